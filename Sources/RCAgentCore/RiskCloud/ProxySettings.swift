import FoundationEssentials

/// The proxy from `HTTPS_PROXY` (or `https_proxy`) and its `NO_PROXY` exceptions.
public struct ProxySettings: Sendable, Equatable {
    public var host: String
    public var port: Int
    /// `socks5://` proxies; otherwise an HTTP proxy used with CONNECT.
    public var isSOCKS: Bool
    public var username: String?
    public var password: Secret?
    /// `NO_PROXY` entries, lower-cased: host names, `.domain` suffixes, addresses, or `*`.
    public var noProxy: [String]

    /// The proxy `environment` asks for, or nil. Throws ``RiskCloudError`` (`bad_config`) for an unusable URL.
    public static func from(environment: [String: String]) throws -> ProxySettings? {
        guard let raw = environment["HTTPS_PROXY"] ?? environment["https_proxy"],
            !raw.trimmingBlanks().isEmpty
        else { return nil }
        let text = raw.contains("://") ? raw : "http://" + raw
        let bad = RiskCloudError(
            .badSetting(name: "HTTPS_PROXY", reason: "it is not a proxy URL like http://HOST:PORT"), tenant: "",
            path: "")
        guard let components = URLComponents(string: text), let host = components.host, !host.isEmpty else {
            throw bad
        }
        let scheme = components.scheme?.lowercased() ?? "http"
        guard ["http", "socks5", "socks5h"].contains(scheme) else { throw bad }
        let noProxy = (environment["NO_PROXY"] ?? environment["no_proxy"] ?? "")
            .split(separator: ",").map { $0.trimmingBlanks().lowercased() }.filter { !$0.isEmpty }
        return ProxySettings(
            host: host, port: components.port ?? (scheme == "http" ? 80 : 1080), isSOCKS: scheme != "http",
            username: components.user?.removingPercentEscapes,
            password: components.password?.removingPercentEscapes.map(Secret.init), noProxy: noProxy)
    }

    /// True when `host` must be reached directly: loopback, or matched by `NO_PROXY`
    /// (`*`, the exact name, or a domain suffix with or without a leading dot; `host:port` entries
    /// match the host; CIDR ranges are not supported).
    public func bypasses(host: String) -> Bool {
        let host = host.lowercased()
        if TenantURL.isLoopback(host) { return true }
        for entry in noProxy {
            if entry == "*" { return true }
            var name = entry
            if !name.hasPrefix("["), let colon = name.lastIndex(of: ":"), name.filter({ $0 == ":" }).count == 1 {
                name = String(name[..<colon])
            }
            name = name.trimming { $0 == "[" || $0 == "]" }
            let suffix = name.hasPrefix(".") ? String(name.dropFirst()) : name
            if host == suffix || host.hasSuffix("." + suffix) { return true }
        }
        return false
    }
}
