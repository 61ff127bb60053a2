import FoundationEssentials
import RCAgentCore

/// What a proxied request may reach: an `/api/…` path (and its query) on the profile's tenant.
struct ProxyTarget: Equatable {
    static let prefix = "/v1/proxy/"

    let profile: String
    /// `/api/…` exactly as the caller sent it (percent-encoding kept).
    let path: String
    /// The query as sent, without `?`; nil when there is none.
    let query: String?

    /// The path and query to append to the tenant's base URL.
    var pathAndQuery: String { path + (query.map { "?" + $0 } ?? "") }

    /// Checks `/v1/proxy/PROFILE/api/…` and its query. Throws ``AgentError`` (`bad_request`) for
    /// anything that could leave `/api/` or the tenant: dot segments, also percent-encoded (once
    /// or more), encoded `/` or `\`, `;` in a segment (also encoded), empty segments (`//host`),
    /// characters outside RFC 3986 paths, a path that does not start with `/api/`.
    init(path raw: String, query: String?) throws {
        func refuse(_ why: String) -> AgentError {
            AgentError.badRequest(
                "the proxy refuses this path: \(why)",
                hint: "use /v1/proxy/PROFILE/api/… with a plain path on the tenant, e.g. /v1/proxy/default/api/v2/records")
        }
        guard raw.hasPrefix(Self.prefix) else { throw refuse("it does not start with \(Self.prefix)") }
        let rest = String(raw.dropFirst(Self.prefix.count))
        guard rest.unicodeScalars.allSatisfy(Self.pathCharacters.contains) else {
            throw refuse("it contains characters that must be percent-encoded")
        }
        let segments = rest.split(separator: "/", omittingEmptySubsequences: false)
        for (index, segment) in segments.enumerated() {
            guard !segment.isEmpty || index == segments.count - 1 else { throw refuse("empty path segment (//)") }
            var decoded = String(segment)
            var stable = false
            // Decode until stable, so %252e%252e is seen for what a careless server makes of it;
            // more than four layers is refused (`make fuzz` found six that hid a dot segment).
            for _ in 0..<5 {
                guard let next = decoded.removingPercentEscapes else { throw refuse("invalid percent-encoding") }
                if next == decoded {
                    stable = true
                    break
                }
                decoded = next
            }
            guard stable else { throw refuse("percent-encoded more than four times") }
            guard decoded != ".", decoded != ".." else { throw refuse("'.' and '..' segments are not allowed") }
            // Servlet containers and some proxies cut a segment at `;` (path parameters), so
            // `..;` is `..` to them: `/api/..;/v1/account/token` would leave /api/.
            guard !decoded.contains(";") else { throw refuse("';' in a path segment is not allowed") }
            guard !decoded.contains("/"), !decoded.contains("\\"),
                !decoded.unicodeScalars.contains(where: \.isControlOrFormat)
            else { throw refuse("encoded '/', '\\' or control characters are not allowed") }
        }
        guard segments.count >= 2 else { throw refuse("no tenant path after the profile") }
        profile = String(segments[0])
        guard ProfileName.isValid(profile) else {
            throw AgentError.badRequest("invalid profile name '\(profile)'", hint: ProfileName.rule)
        }
        path = "/" + segments.dropFirst().joined(separator: "/")
        guard path.hasPrefix("/api/") else { throw refuse("only /api/… paths on the tenant can be reached") }
        if let query {
            guard query.unicodeScalars.allSatisfy(Self.queryCharacters.contains) else {
                throw refuse("the query contains characters that must be percent-encoded")
            }
        }
        self.query = query
    }

    /// RFC 3986 `pchar` and `/`.
    static let pathCharacters = Set(
        "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-._~%!$&'()*+,;=:@/".unicodeScalars)
    /// RFC 3986 query characters.
    static let queryCharacters = pathCharacters.union(["?"])
}
