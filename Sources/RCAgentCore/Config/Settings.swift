import FoundationEssentials
import Glibc

/// Everything a command resolves before it acts, with one precedence everywhere:
/// flag > environment > config file > built-in default.
///
/// | setting | flag | environment | config | default |
/// |---|---|---|---|---|
/// | config file | `--config` | `RC_AGENT_CONFIG` | – | `$XDG_CONFIG_HOME/rc-agent/config.toml`, else `~/.config/rc-agent/config.toml` |
/// | profile | `--profile` | `RC_PROFILE` | `[defaults] profile` | `default` |
/// | tenant URL | `--url` (login) | `RC_AGENT_URL` | `[profiles.NAME] url` | the URL stored with the credentials |
/// | credentials backend | `--backend` (login) | `RC_CLIENT_ID`/`RC_CLIENT_SECRET` → `env` | `[profiles.NAME] backend` | `secret-service` |
/// | keyring timeout | – | `RC_AGENT_KEYRING_TIMEOUT` | `[defaults] keyring_timeout` | 30 s |
public struct Settings: Sendable {
    /// The process environment the settings were resolved from (children inherit it).
    public let environment: [String: String]
    /// The config file's path (it need not exist).
    public let configPath: String
    /// The config as read when the settings were resolved.
    public let config: ConfigFile
    /// The selected profile (validated).
    public let profile: String
    /// True when the profile came from a flag or the environment rather than a default.
    public let profileExplicit: Bool

    /// Built-in keyring timeout in seconds: long enough for a person to answer an unlock prompt.
    public static let defaultKeyringTimeout: Double = 30

    /// Resolves the config path and profile and reads the config file.
    public init(configFlag: String?, profileFlag: String?, environment: [String: String]) throws {
        self.environment = environment
        let path = Self.configPath(flag: configFlag, environment: environment)
        configPath = path
        config = try ConfigFile.load(path: path)
        let explicit = Self.explicitProfile(flag: profileFlag, environment: environment)
        profile = try ProfileName.validated(explicit ?? config.defaultProfile ?? "default")
        profileExplicit = explicit != nil
    }

    /// The profile the user named: `--profile`, else a non-empty `RC_PROFILE`; nil when neither
    /// (the config's default, or a listening agent's).
    public static func explicitProfile(flag: String?, environment: [String: String]) -> String? {
        flag ?? environment["RC_PROFILE"].flatMap { $0.isEmpty ? nil : $0 }
    }

    /// Seconds a keyring call may take before it is abandoned.
    public var keyringTimeout: Double {
        if let value = environment["RC_AGENT_KEYRING_TIMEOUT"].flatMap(Double.init), value > 0 { return value }
        return config.keyringTimeout ?? Self.defaultKeyringTimeout
    }

    /// Largest request body the agent's proxy passes on: `[defaults] proxy_max_body`, else 64 MiB.
    public var proxyMaxBody: Int { config.proxyMaxBody ?? Self.defaultProxyMaxBody }

    /// `proxy_max_body` when the config file does not set it.
    public static let defaultProxyMaxBody = 64 << 20

    /// The tenant URL for `profile`: `flag`, then `RC_AGENT_URL`, then the config file, then `stored`
    /// (the URL saved with the credentials). Nil when none of them has one.
    public func tenantURL(profile: String, flag: String? = nil, stored: String? = nil) throws -> TenantURL? {
        let candidates = [flag, environment["RC_AGENT_URL"], config.profiles[profile]?.url, stored]
        guard let raw = candidates.compactMap({ $0 }).first(where: { !$0.isEmpty }) else { return nil }
        return try TenantURL(parsing: raw)
    }

    /// Where `profile`'s credentials come from (see ``CredentialBackend/of(profile:config:environment:selectedProfile:)``).
    public func backend(for profile: String) -> CredentialBackend {
        CredentialBackend.of(profile: profile, config: config, environment: environment, selectedProfile: self.profile)
    }

    /// `$XDG_STATE_HOME/rc-agent` (default `~/.local/state/rc-agent`): reminder timestamps, never secrets.
    public var stateDirectory: String { Self.stateDirectory(environment: environment) }

    /// ``stateDirectory`` from the environment alone (no config file needed).
    public static func stateDirectory(environment: [String: String]) -> String {
        xdgDirectory("XDG_STATE_HOME", fallback: ".local/state", environment: environment) + "/rc-agent"
    }

    static func configPath(flag: String?, environment: [String: String]) -> String {
        if let flag, !flag.isEmpty { return flag }
        if let env = environment["RC_AGENT_CONFIG"], !env.isEmpty { return env }
        return xdgDirectory("XDG_CONFIG_HOME", fallback: ".config", environment: environment) + "/rc-agent/config.toml"
    }

    /// The home directory in the password database (what `NSHomeDirectory()` falls back to).
    static func accountHome() -> String {
        guard let entry = getpwuid(getuid()), let directory = entry.pointee.pw_dir else { return "/" }
        return String(cString: directory)
    }

    static func xdgDirectory(_ variable: String, fallback: String, environment: [String: String]) -> String {
        if let value = environment[variable], value.hasPrefix("/") { return value }
        let home = environment["HOME"].flatMap { $0.isEmpty ? nil : $0 } ?? accountHome()
        return home + "/" + fallback
    }
}
