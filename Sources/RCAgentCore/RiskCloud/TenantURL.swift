import FoundationEssentials
import Glibc

/// A tenant's base URL, normalised to scheme + host (+ port): `https://acme.logicgate.com`.
///
/// Accepts `acme.logicgate.com`, `https://acme.logicgate.com/`, or a URL with a trailing
/// `/api…` path (pasted from an API call). `https` is required; plain `http` is accepted only
/// for loopback hosts (127.0.0.0/8, ::1, localhost), which is what the local stand-in uses.
public struct TenantURL: Sendable, Hashable, CustomStringConvertible {
    /// `https` or (loopback only) `http`.
    public let scheme: String
    /// Lower-cased host name or address (IPv6 without brackets).
    public let host: String
    /// Explicit port, if one was given and it is not the scheme's default.
    public let port: Int?

    /// Parses and normalises `input`; throws ``TenantURLError`` with a message that says why not.
    public init(parsing input: String) throws {
        let trimmed = input.trimmingBlanksAndNewlines()
        guard !trimmed.isEmpty else { throw TenantURLError(input: input, reason: "the URL is empty") }
        let withScheme = trimmed.contains("://") ? trimmed : "https://" + trimmed
        guard let components = URLComponents(string: withScheme), let rawHost = components.host,
            !rawHost.isEmpty
        else {
            throw TenantURLError(input: input, reason: "it is not a URL")
        }
        let scheme = (components.scheme ?? "").lowercased()
        let host = rawHost.lowercased().trimming { $0 == "[" || $0 == "]" }
        // URLComponents takes `[]` and `[%]` as hosts (found by `make fuzz`): a host is a DNS name
        // or an address, and an IPv6 address only in brackets.
        let bracketed = rawHost.hasPrefix("[") && rawHost.hasSuffix("]")
        let allowed = bracketed ? Self.ipv6Characters : Self.hostCharacters
        // Nor a percent-encoded host (`xn--b%33…`, which did not parse back to itself) or one over
        // DNS's limits (63 per label, 253 in all).
        guard !host.isEmpty, host.unicodeScalars.allSatisfy(allowed.contains),
            components.percentEncodedHost?.contains("%") != true, host.utf8.count <= 253,
            bracketed ? Self.isIPv6Address(host) : host.split(separator: ".").allSatisfy({ $0.utf8.count <= 63 })
        else {
            throw TenantURLError(input: input, reason: "'\(rawHost)' is not a host name")
        }
        guard components.user == nil, components.password == nil else {
            throw TenantURLError(input: input, reason: "it must not contain a user name or password")
        }
        switch scheme {
        case "https":
            break
        case "http":
            guard Self.isLoopback(host) else {
                throw TenantURLError(
                    input: input,
                    reason: "plain http is allowed only for loopback hosts (127.0.0.0/8, ::1, localhost); use https://\(host)"
                )
            }
        default:
            throw TenantURLError(input: input, reason: "the scheme must be https")
        }
        let path = components.path
        if !(path.isEmpty || path == "/" || path.hasPrefix("/api")) {
            throw TenantURLError(
                input: input,
                reason: "it has a path (\(path)); give only the tenant, e.g. https://COMPANY.logicgate.com"
            )
        }
        let defaultPort = scheme == "https" ? 443 : 80
        self.scheme = scheme
        self.host = host
        self.port = components.port.flatMap { $0 == defaultPort ? nil : $0 }
    }

    /// `scheme://host[:port]` with no trailing slash.
    public var base: String {
        let hostPart = host.contains(":") ? "[\(host)]" : host
        return "\(scheme)://\(hostPart)" + (port.map { ":\($0)" } ?? "")
    }

    /// `base` followed by `path` (which starts with `/`).
    public func url(path: String) -> String { base + path }

    public var description: String { base }

    /// What a (lower-cased) DNS name or IPv4 address is made of.
    static let hostCharacters = Set("abcdefghijklmnopqrstuvwxyz0123456789.-_".unicodeScalars)
    /// What an IPv6 address is made of (with an embedded IPv4 part).
    static let ipv6Characters = Set("0123456789abcdef:.".unicodeScalars)

    /// True when `text` is an IPv6 address (`[6666…]` is not one: found by `make fuzz`).
    static func isIPv6Address(_ text: String) -> Bool {
        var address = in6_addr()
        return inet_pton(AF_INET6, text, &address) == 1
    }

    /// True for 127.0.0.0/8, ::1 and localhost.
    public static func isLoopback(_ host: String) -> Bool {
        let h = host.lowercased().trimming { $0 == "[" || $0 == "]" }
        if h == "localhost" || h == "::1" || h == "0:0:0:0:0:0:0:1" { return true }
        let parts = h.split(separator: ".", omittingEmptySubsequences: false)
        guard parts.count == 4, parts[0] == "127" else { return false }
        return parts.allSatisfy { UInt8($0) != nil }
    }
}

/// A tenant URL rc-agent will not use.
public struct TenantURLError: RCAgentError, Equatable {
    public let input: String
    public let reason: String
    public var code: ErrorCode { .badURL }
    public var message: String { "invalid tenant URL '\(input)': \(reason)" }
    public var hint: String? { "use your tenant's address, e.g. https://COMPANY.logicgate.com" }
}
