/// The single version number of rc-agent: `--version`, the User-Agent, the package and the man page.
public enum RCAgentVersion {
    public static let current = "0.1.0"
    /// `User-Agent` sent to the tenant.
    public static var userAgent: String { "rc-agent/\(current)" }
}
