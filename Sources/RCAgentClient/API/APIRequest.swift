import RCAgentCore
import Foundation

/// What `rc-agent api` was asked to do, checked before anything is sent.
public struct APIRequest: Sendable {
    /// Upper-case HTTP method.
    public var method: String
    /// Path (with query) relative to the tenant, starting with `/`.
    public var path: String
    /// Extra request headers (never `Authorization`: see ``parseHeader(_:)``).
    public var headers: [(name: String, value: String)]
    /// The request body, if any.
    public var body: [UInt8]?
    /// Follow v2 pages and print one array of all `content` items.
    public var paginate: Bool
    /// Print the status line and headers before the body.
    public var include: Bool
    /// Exit 22 instead of 1 on a non-2xx answer (like `curl --fail`).
    public var fail: Bool
    /// Pretty-print JSON (stdout is a terminal).
    public var pretty: Bool

    /// Largest request body read from a file, stdin or the command line.
    public static let maximumBodyBytes = 16 << 20

    /// Builds a request from command-line values. `data` is `@FILE`, `-` (stdin) or the body itself;
    /// `readStandardInput` is called only for `-`. Throws ``UsageError``.
    public init(
        method: String?, path: String, data: String?, headers: [String], paginate: Bool, include: Bool, fail: Bool,
        pretty: Bool, readStandardInput: () -> Data
    ) throws {
        let body = try data.map { try Self.body(from: $0, readStandardInput: readStandardInput) }
        self.method = try Self.method(method ?? (body == nil ? "GET" : "POST"))
        self.path = try Self.relativePath(path)
        self.headers = try headers.map(Self.parseHeader)
        self.body = body
        self.paginate = paginate
        self.include = include
        self.fail = fail
        self.pretty = pretty
        if paginate {
            guard self.method == "GET", body == nil else {
                throw UsageError("--paginate works only with GET requests without a body")
            }
            guard !include else { throw UsageError("--paginate and --include cannot be combined") }
        }
    }

    /// `GET`, `post` → `POST`; only letters.
    static func method(_ raw: String) throws -> String {
        let method = raw.uppercased()
        guard !method.isEmpty, method.count <= 16, method.allSatisfy({ $0.isASCII && $0.isLetter }) else {
            throw UsageError("invalid HTTP method '\(raw)'", hint: "use GET, POST, PUT, PATCH or DELETE")
        }
        return method
    }

    /// `api/v2/records` or `/api/v2/records?page=1` → `/api/v2/records…`. A full URL is refused:
    /// the token goes only to the profile's tenant.
    public static func relativePath(_ raw: String) throws -> String {
        let path = raw.trimmingCharacters(in: .whitespaces)
        let hint = "give a path relative to the tenant, e.g. /api/v2/records; the tenant comes from the profile"
        guard !path.isEmpty else { throw UsageError("the PATH is empty", hint: hint) }
        if path.contains("://") || path.hasPrefix("//") || path.hasPrefix("\\") {
            throw UsageError("'\(raw)' is not a path relative to the tenant", hint: hint)
        }
        guard !path.unicodeScalars.contains(where: {
            CharacterSet.whitespacesAndNewlines.contains($0) || CharacterSet.controlCharacters.contains($0)
        }) else {
            throw UsageError("the PATH contains spaces or control characters", hint: "percent-encode them (%20)")
        }
        return path.hasPrefix("/") ? path : "/" + path
    }

    /// `'Name: value'` → (Name, value). `Authorization` and the framing headers are refused: rc-agent
    /// sets them itself. Throws ``UsageError``.
    public static func parseHeader(_ raw: String) throws -> (name: String, value: String) {
        guard let colon = raw.firstIndex(of: ":") else {
            throw UsageError("invalid header '\(raw.prefix(40))': expected 'Name: value'")
        }
        let name = raw[..<colon].trimmingCharacters(in: .whitespaces)
        let value = raw[raw.index(after: colon)...].trimmingCharacters(in: .whitespaces)
        let token = CharacterSet(charactersIn: "!#$%&'*+-.^_`|~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz")
        guard !name.isEmpty, name.unicodeScalars.allSatisfy({ token.contains($0) }) else {
            throw UsageError("invalid header name in '\(raw.prefix(40))'")
        }
        guard !value.unicodeScalars.contains(where: { CharacterSet.controlCharacters.contains($0) && $0 != "\t" }) else {
            throw UsageError("the value of header \(name) contains control characters")
        }
        if TenantRequest.reservedHeaders.contains(name.lowercased()) {
            // Do not echo the value: it may be a credential.
            throw UsageError(
                "the \(name) header is set by rc-agent and cannot be given with -H",
                hint: name.lowercased() == "authorization"
                    ? "rc-agent sends the agent's bearer token itself; drop the -H 'Authorization: …'" : nil)
        }
        return (name, value)
    }

    /// The body for `-d`: `@FILE`, `-` (stdin) or the text itself.
    static func body(from data: String, readStandardInput: () -> Data) throws -> [UInt8] {
        let bytes: Data
        if data == "-" {
            bytes = readStandardInput()
        } else if data.hasPrefix("@") {
            let path = String(data.dropFirst())
            guard let contents = FileManager.default.contents(atPath: path) else {
                throw UsageError("cannot read the request body from \(path)")
            }
            bytes = contents
        } else {
            bytes = Data(data.utf8)
        }
        guard bytes.count <= maximumBodyBytes else {
            throw UsageError("the request body is larger than \(maximumBodyBytes) bytes")
        }
        return Array(bytes)
    }
}
