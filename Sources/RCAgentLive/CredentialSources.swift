import Dispatch
import FoundationEssentials
import RCAgentCore
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// The `env` backend: `RC_CLIENT_ID` and `RC_CLIENT_SECRET` (or `RC_CLIENT_SECRET_FILE`), with
/// `RC_AGENT_URL` for the tenant (the profile's `url` only when its config says `backend = "env"`).
/// Read-only; nothing is written anywhere.
public struct EnvironmentSource: ReadOnlyCredentialSource {
    let environment: [String: String]
    let config: @Sendable () -> ConfigFile

    public init(environment: [String: String], config: @escaping @Sendable () -> ConfigFile) {
        self.environment = environment
        self.config = config
    }

    public static let sourceBackend = CredentialBackend.env

    public func readOnly(profile: String) -> ReadOnlyCredentialsError? {
        ReadOnlyCredentialsError(
            profile: profile, backend: .env,
            location: "the environment (\(CredentialEnvironment.clientID), \(CredentialEnvironment.secret))")
    }

    public func load(profile: String) async throws -> StoredCredential? {
        guard CredentialEnvironment.isPresent(environment) else { return nil }
        guard let clientID = value(CredentialEnvironment.clientID) else {
            throw CredentialSourceError(
                "\(CredentialEnvironment.secret) is set but \(CredentialEnvironment.clientID) is not",
                hint: "set both \(CredentialEnvironment.clientID) and \(CredentialEnvironment.secret) (or \(CredentialEnvironment.secretFile))")
        }
        let secret: SecretFile.Contents
        if let inline = value(CredentialEnvironment.secret) {
            secret = SecretFile.Contents(secret: Secret(inline), modified: Date(), mode: 0o600)
        } else if let path = value(CredentialEnvironment.secretFile) {
            secret = try await SecretFile.readOffPool(path)
        } else {
            throw CredentialSourceError(
                "\(CredentialEnvironment.clientID) is set but neither \(CredentialEnvironment.secret) nor \(CredentialEnvironment.secretFile) is",
                hint: "export \(CredentialEnvironment.secret) (a CI's masked variable) or \(CredentialEnvironment.secretFile)")
        }
        // The variables belong to whoever exported them, not to the selected profile: its config
        // url names their tenant only when the config itself says the profile's credentials are these.
        let settings = config().profiles[profile]
        guard let url = value("RC_AGENT_URL") ?? (settings?.backend == .env ? settings?.url : nil) else {
            throw CredentialSourceError(
                "the environment holds credentials but RC_AGENT_URL is not set",
                hint: "export RC_AGENT_URL=https://YOUR-TENANT.logicgate.com (the tenant these credentials are for), "
                    + "or set `backend = \"env\"` and `url` under [profiles.\(profile)]")
        }
        return StoredCredential(
            profile: profile, clientID: clientID, url: url, secret: secret.secret, created: secret.modified)
    }

    public func fingerprint(profile: String) async -> Int? {
        // The process environment never changes; a secret file named by RC_CLIENT_SECRET_FILE can.
        guard value(CredentialEnvironment.secret) == nil, let path = value(CredentialEnvironment.secretFile) else {
            return nil
        }
        return await SecretFile.fingerprint(path)
    }

    private func value(_ name: String) -> String? {
        environment[name].flatMap { $0.isEmpty ? nil : $0 }
    }
}

/// The `file` backend: the Client Secret in a file something else delivers and rotates
/// (`client_secret_file`, or systemd's `$CREDENTIALS_DIRECTORY/rc-agent.PROFILE`), the Client ID
/// and tenant from the config. The file is read on every token fetch, so a rotated secret is used
/// from the next fetch on; ``fingerprint(profile:)`` lets the agent notice a change at once.
public struct SecretFileSource: ReadOnlyCredentialSource {
    let environment: [String: String]
    let config: @Sendable () -> ConfigFile

    public init(environment: [String: String], config: @escaping @Sendable () -> ConfigFile) {
        self.environment = environment
        self.config = config
    }

    public static let sourceBackend = CredentialBackend.file

    private func path(_ profile: String) -> String? {
        CredentialBackend.secretFile(profile: profile, config: config(), environment: environment)
    }

    public func readOnly(profile: String) -> ReadOnlyCredentialsError? {
        ReadOnlyCredentialsError(profile: profile, backend: .file, location: path(profile) ?? "a secret file")
    }

    public func load(profile: String) async throws -> StoredCredential? {
        let settings = config().profiles[profile]
        guard let path = path(profile) else {
            throw CredentialSourceError(
                "profile '\(profile)' uses the file backend but names no file and $CREDENTIALS_DIRECTORY is not set",
                hint: "add `client_secret_file = \"/run/secrets/rc\"` under [profiles.\(profile)], or run under a "
                    + "systemd unit with `LoadCredentialEncrypted=rc-agent.\(profile):…`")
        }
        guard let clientID = settings?.clientID, !clientID.isEmpty else {
            throw CredentialSourceError(
                "profile '\(profile)' reads its secret from \(path) but the config has no client_id for it",
                hint: "add `client_id = \"…\"` under [profiles.\(profile)] (Risk Cloud: Profile → Access Key)")
        }
        // Only the config binds the file to a tenant: RC_AGENT_URL is whatever shell started the agent.
        guard let url = settings?.url, !url.isEmpty else {
            throw CredentialSourceError(
                "profile '\(profile)' reads its secret from \(path) but the config has no url for it "
                    + "(RC_AGENT_URL does not count for a secret file)",
                hint: "add `url = \"https://…\"` under [profiles.\(profile)]")
        }
        let contents = try await SecretFile.readOffPool(path)
        return StoredCredential(
            profile: profile, clientID: clientID, url: url, secret: contents.secret, created: contents.modified)
    }

    public func warnings(profile: String) -> [String] {
        path(profile).flatMap(SecretFile.opennessWarning).map { [$0] } ?? []
    }

    public func fingerprint(profile: String) async -> Int? {
        guard let path = path(profile) else { return nil }
        return await SecretFile.fingerprint(path)
    }
}

/// What the sources share: they are read-only (writes throw their ``CredentialStore/readOnly(profile:)``
/// refusal), list nothing of their own (their profiles are the config's and the selected one), and
/// report a profile's state from one read.
public protocol ReadOnlyCredentialSource: CredentialStore {
    /// The backend the source is.
    static var sourceBackend: CredentialBackend { get }
    /// Problems with `profile`'s source that do not stop rc-agent.
    func warnings(profile: String) -> [String]
}

extension ReadOnlyCredentialSource {
    public func backend(for profile: String) -> CredentialBackend { Self.sourceBackend }

    public func warnings(profile: String) -> [String] { [] }

    public func save(_ credential: StoredCredential) async throws { throw refusal(credential.profile) }

    @discardableResult
    public func delete(profile: String) async throws -> Bool { throw refusal(profile) }

    public func list() async throws -> [CredentialSummary] { [] }

    @discardableResult
    public func reconcile(profile: String) async throws -> Bool { false }

    public func states(profiles: [String]) async -> [String: CredentialState] {
        var states: [String: CredentialState] = [:]
        for profile in profiles { states[profile] = await state(profile) }
        return states
    }

    private func refusal(_ profile: String) -> ReadOnlyCredentialsError {
        readOnly(profile: profile)
            ?? ReadOnlyCredentialsError(profile: profile, backend: Self.sourceBackend, location: "its source")
    }

    /// The profile's state from one attempt to read it.
    private func state(_ profile: String) async -> CredentialState {
        let (backend, warnings) = (Self.sourceBackend, warnings(profile: profile))
        do {
            guard let credential = try await load(profile: profile) else {
                return CredentialState(backend: backend, keyring: .missing, warnings: warnings)
            }
            let summary = CredentialSummary(
                profile: profile, clientID: credential.clientID, url: credential.url,
                created: backend == .file ? credential.created : nil, locked: false)
            return CredentialState(backend: backend, keyring: .ok, summary: summary, warnings: warnings)
        } catch {
            let message = (error as? any RCAgentError).map(\.description) ?? "\(error)"
            return CredentialState(backend: backend, keyring: .unavailable, error: message, warnings: warnings)
        }
    }
}

/// Reading a secret from a file someone else writes: symlinks followed (Kubernetes Secret volumes
/// are symlinks), size bounded, trailing newline dropped.
enum SecretFile {
    struct Contents {
        var secret: Secret
        var modified: Date
        var mode: mode_t
    }

    /// More than any Client Secret: a file this big is the wrong file.
    static let maximumSize = 64 * 1024

    /// How long a read may take: a file on a hung network or FUSE mount must not hold a token
    /// request (or the agent's watcher) forever.
    static let readTimeout: Double = 10

    /// ``read(_:)`` on a thread of its own, bounded by ``readTimeout``: a blocking read never
    /// runs on the cooperative pool, and the caller gets an error by the deadline. A read still
    /// blocked then is abandoned (its result dropped).
    static func readOffPool(_ path: String) async throws -> Contents {
        let pending = PendingRead()
        return try await withCheckedThrowingContinuation { continuation in
            pending.install(continuation)
            DispatchQueue.global().asyncAfter(deadline: .now() + readTimeout) {
                pending.finish(.failure(CredentialSourceError(
                    "reading the secret file \(path) took longer than \(Int(readTimeout)) s",
                    hint: "check the file system it is on (a hung network or FUSE mount)")))
            }
            DetachedThread.run {
                pending.finish(Result { try read(path) })
            }
        }
    }

    /// One read's continuation, resumed once: by the read or by the deadline, whichever is first.
    private final class PendingRead: Sendable {
        private let continuation = Mutex<CheckedContinuation<Contents, any Error>?>(nil)

        func install(_ continuation: CheckedContinuation<Contents, any Error>) {
            self.continuation.withLock { $0 = continuation }
        }

        func finish(_ result: Result<Contents, any Error>) {
            continuation.withLock { taken in
                defer { taken = nil }
                return taken
            }?.resume(with: result)
        }
    }

    /// Reads the file: opened without blocking (a FIFO with no writer would block open(2)),
    /// refused unless a regular file, then read blocking.
    static func read(_ path: String) throws -> Contents {
        let fd = open(path, O_RDONLY | O_CLOEXEC | O_NONBLOCK | O_NOCTTY)
        guard fd >= 0 else {
            let code = errno
            throw CredentialSourceError(
                "cannot read the secret file \(path): \(String(cString: strerror(code)))",
                hint: code == ENOENT
                    ? "check the path, and that the system delivering the secret has written it"
                    : "make it readable by uid \(geteuid()) (the user rc-agent runs as), and by no one else")
        }
        defer { close(fd) }
        var info = stat()
        guard fstat(fd, &info) == 0, info.st_mode & S_IFMT == S_IFREG else {
            throw CredentialSourceError(
                "the secret file \(path) is not a regular file",
                hint: "point client_secret_file (or RC_CLIENT_SECRET_FILE) at the file holding the Client Secret")
        }
        _ = fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) & ~O_NONBLOCK)
        var bytes = [UInt8](repeating: 0, count: maximumSize + 1)
        defer { bytes.withUnsafeMutableBytes { _ = memset($0.baseAddress!, 0, $0.count) } }
        var count = 0
        while count < bytes.count {
            let n = bytes.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress! + count, $0.count - count) }
            if n < 0 && errno == EINTR { continue }
            guard n >= 0 else {
                throw CredentialSourceError("cannot read the secret file \(path): \(String(cString: strerror(errno)))", hint: nil)
            }
            if n == 0 { break }
            count += n
        }
        guard count <= maximumSize else {
            throw CredentialSourceError("the secret file \(path) is larger than \(maximumSize) bytes", hint: "point at the file holding only the Client Secret")
        }
        var text = String(decoding: bytes[0..<count], as: UTF8.self)
        while text.last == "\n" || text.last == "\r" { text.removeLast() }
        guard !text.isEmpty else {
            throw CredentialSourceError("the secret file \(path) is empty", hint: "check what delivers it")
        }
        let modified = Date(
            timeIntervalSince1970: Double(info.st_mtim.tv_sec) + Double(info.st_mtim.tv_nsec) / 1e9)
        return Contents(secret: Secret(text), modified: modified, mode: info.st_mode & 0o777)
    }

    /// A warning when `path` can be read by group or others (nil when private or unreadable).
    static func opennessWarning(_ path: String) -> String? {
        var info = stat()
        guard stat(path, &info) == 0 else { return nil }
        let mode = info.st_mode & 0o777
        guard mode & 0o077 != 0 else { return nil }
        return "the secret file \(path) is mode \(String(mode, radix: 8)): group or others can read it; "
            + "make it 0600 (or 0400), e.g. `defaultMode: 0400` on a Kubernetes Secret volume"
    }

    /// A hash of the file's content (nil when it cannot be read), compared within one process.
    static func fingerprint(_ path: String) async -> Int? {
        guard let contents = try? await readOffPool(path) else { return nil }
        var hasher = Hasher()
        hasher.combine(contents.secret.reveal())
        return hasher.finalize()
    }
}

// Both sources hold the process environment: printed, they show nothing of it.
extension EnvironmentSource: CustomStringConvertible, CustomDebugStringConvertible {
    public var description: String { "EnvironmentSource" }
    public var debugDescription: String { description }
}

extension SecretFileSource: CustomStringConvertible, CustomDebugStringConvertible {
    public var description: String { "SecretFileSource" }
    public var debugDescription: String { description }
}
