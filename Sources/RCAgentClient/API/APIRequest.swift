import FoundationEssentials
import RCAgentCore

#if canImport(Glibc)
import Glibc
#endif

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
    /// `readStandardInput` is called only for `-`, with the most bytes to read. Throws ``UsageError``.
    public init(
        method: String?, path: String, data: String?, headers: [String], paginate: Bool, include: Bool, fail: Bool,
        pretty: Bool, readStandardInput: (_ upTo: Int) -> Data
    ) throws {
        let body = try data.map { try Self.body(from: $0, readStandardInput: readStandardInput) }
        self.method = try Self.method(method ?? (body == nil ? "GET" : "POST"))
        self.path = try Self.relativePath(path)
        self.headers = try headers.enumerated().map { try Self.parseHeader($0.element, position: $0.offset + 1) }
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
        let path = raw.trimmingBlanks()
        let hint = "give a path relative to the tenant, e.g. /api/v2/records; the tenant comes from the profile"
        guard !path.isEmpty else { throw UsageError("the PATH is empty", hint: hint) }
        if path.contains("://") || path.hasPrefix("//") || path.hasPrefix("\\") {
            throw UsageError("'\(raw)' is not a path relative to the tenant", hint: hint)
        }
        guard !path.unicodeScalars.contains(where: {
            $0.isBlankOrNewline || $0.isControlOrFormat
        }) else {
            throw UsageError("the PATH contains spaces or control characters", hint: "percent-encode them (%20)")
        }
        return path.hasPrefix("/") ? path : "/" + path
    }

    /// `'Name: value'` → (Name, value). `Authorization` and the framing headers are refused: rc-agent
    /// sets them itself. Errors name the header (or its position among the `-H` options when it has
    /// no valid name) and never show its value: it may be a credential. Throws ``UsageError``.
    public static func parseHeader(_ raw: String, position: Int = 1) throws -> (name: String, value: String) {
        let which = "-H option #\(position)"
        guard let colon = raw.firstIndex(of: ":") else {
            throw UsageError(
                "\(which) is not 'Name: value' (it has no ':'); its text is not shown, it may hold a credential")
        }
        let name = raw[..<colon].trimmingBlanks()
        let value = raw[raw.index(after: colon)...].trimmingBlanks()
        guard !name.isEmpty, name.unicodeScalars.allSatisfy({ headerNameCharacters.contains($0) }) else {
            throw UsageError(
                "\(which) has no valid header name before ':'; its text is not shown, it may hold a credential",
                hint: "a header name is letters, digits and !#$%&'*+-.^_`|~, e.g. -H 'Accept: application/json'")
        }
        guard !value.unicodeScalars.contains(where: { $0.isControlOrFormat && $0 != "\t" }) else {
            throw UsageError("the value of header \(name) contains control characters")
        }
        if TenantRequest.reservedHeaders.contains(name.lowercased()) {
            throw UsageError(
                "the \(name) header is set by rc-agent and cannot be given with -H",
                hint: name.lowercased() == "authorization"
                    ? "rc-agent sends the agent's bearer token itself; drop the -H 'Authorization: …'" : nil)
        }
        return (name, value)
    }

    /// RFC 9110 `token` characters: what a header name is made of.
    static let headerNameCharacters = Set(
        "!#$%&'*+-.^_`|~0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz".unicodeScalars)

    /// The body for `-d`: `@FILE`, `-` (stdin) or the text itself. A file's size is checked before
    /// it is read; stdin is read up to one byte past the limit.
    static func body(from data: String, readStandardInput: (_ upTo: Int) -> Data) throws -> [UInt8] {
        let bytes: Data
        if data == "-" {
            bytes = readStandardInput(maximumBodyBytes + 1)
        } else if data.hasPrefix("@") {
            bytes = try file(String(data.dropFirst()))
        } else {
            bytes = Data(data.utf8)
        }
        guard bytes.count <= maximumBodyBytes else { throw tooLarge() }
        return Array(bytes)
    }

    /// The contents of `path`, refused by its size before anything is read (a FIFO or device is
    /// read up to one byte past the limit).
    private static func file(_ path: String) throws -> Data {
        let fd = open(path, O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else {
            throw UsageError("cannot read the request body from \(path): \(String(cString: strerror(errno)))")
        }
        defer { close(fd) }
        var info = stat()
        if fstat(fd, &info) == 0 {
            if info.st_mode & S_IFMT == S_IFDIR {
                throw UsageError("cannot read the request body from \(path): it is a directory")
            }
            if info.st_mode & S_IFMT == S_IFREG, Int(info.st_size) > maximumBodyBytes {
                throw tooLarge(path: path, size: Int(info.st_size))
            }
        }
        do {
            return Data(try FileDescriptorIO.read(fd, upTo: maximumBodyBytes + 1))
        } catch {
            throw UsageError("cannot read the request body from \(path): \(error.message)")
        }
    }

    private static func tooLarge(path: String? = nil, size: Int = 0) -> UsageError {
        let limit = "\(maximumBodyBytes >> 20) MiB (\(maximumBodyBytes) bytes)"
        return UsageError(
            path.map { "\($0) is \(size) bytes; a request body may be at most \(limit)" }
                ?? "the request body is larger than \(limit)",
            hint: "split the upload into smaller requests")
    }
}
