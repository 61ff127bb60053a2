import Dispatch
import FoundationEssentials
import Glibc
import RCAgentCore
import Synchronization

/// The agent's Secret Service keyring: every libsecret call runs in a short-lived child,
/// `rc-agent keyring-helper`, that answers one request on a pipe and exits.
///
/// libsecret brings GLib, GObject, GIO and a dozen more libraries: about 4 MB of the agent's
/// resident memory once mapped, for good, although the agent reads the keyring only when it
/// fetches a token (about once an hour per profile), for `GET /v1/status` and for a rotation
/// reminder. In a child they cost that child's start instead (about 10–20 ms per call). Commands
/// keep calling ``LibSecretStore`` in their own process: they end soon after.
///
/// The child runs the same binary (`/proc/self/exe`, so an upgrade on disk never mixes two
/// versions), with the agent's environment (the session bus address) and a new request on its
/// stdin; its answer on stdout holds the Client Secret for a `load`, which goes only to the agent
/// over that pipe. Errors come back as the ``KeyringError`` the child met, so status, doctor and
/// the token answers name the same cause as before.
public struct KeyringProcessStore: CredentialStore {
    let helper: KeyringHelperProcess

    /// - Parameters:
    ///   - executable: the rc-agent binary to run as the helper.
    ///   - environment: the helper's whole environment (where the session bus is).
    ///   - timeout: seconds one keyring call may take in the helper (as ``LibSecretStore/timeout``).
    public init(executable: String, environment: [String: String], timeout: Double) {
        helper = KeyringHelperProcess(executable: executable, environment: environment, timeout: timeout)
    }

    public func backend(for profile: String) -> CredentialBackend { .secretService }

    public func load(profile: String) async throws -> StoredCredential? {
        guard case .credential(let credential) = try await helper.call(.load(profile: profile)) else {
            throw helper.unexpected
        }
        return credential?.stored
    }

    public func save(_ credential: StoredCredential) async throws {
        guard case .done = try await helper.call(.save(KeyringHelperCredential(credential))) else { throw helper.unexpected }
    }

    @discardableResult
    public func delete(profile: String) async throws -> Bool {
        guard case .done(let deleted) = try await helper.call(.delete(profile: profile)) else { throw helper.unexpected }
        return deleted
    }

    public func list() async throws -> [CredentialSummary] {
        guard case .summaries(let summaries) = try await helper.call(.list) else { throw helper.unexpected }
        return summaries
    }

    @discardableResult
    public func reconcile(profile: String) async throws -> Bool {
        guard case .done(let changed) = try await helper.call(.reconcile(profile: profile)) else {
            throw helper.unexpected
        }
        return changed
    }
}

extension KeyringProcessStore: CustomStringConvertible, CustomDebugStringConvertible {
    public var description: String { "KeyringProcessStore(timeout: \(helper.timeout))" }
    public var debugDescription: String { description }
}

/// Desktop notifications for the agent, sent by the keyring helper (GDBus comes with libsecret).
public struct KeyringProcessNotifier: DesktopNotifier {
    let helper: KeyringHelperProcess

    /// See ``KeyringProcessStore/init(executable:environment:timeout:)``.
    public init(executable: String, environment: [String: String], timeout: Double) {
        helper = KeyringHelperProcess(executable: executable, environment: environment, timeout: timeout)
    }

    public func notify(summary: String, body: String) async -> Bool {
        guard case .done(let shown) = try? await helper.call(.notify(summary: summary, body: body)) else { return false }
        return shown
    }
}

/// The child's side: `rc-agent keyring-helper` reads one ``KeyringHelperCall`` from stdin, runs it
/// on the keyring of its session bus and writes the ``KeyringHelperReply`` to stdout.
public enum KeyringHelper {
    /// The hidden subcommand's name.
    public static let command = "keyring-helper"

    /// Answers the request on stdin; returns the exit status (0 whenever an answer was written).
    public static func serve() async -> Int32 {
        ProcessHardening.apply(.zeroForGood)
        guard let input = try? FileDescriptorIO.read(0, upTo: KeyringHelperProcess.sizeLimit),
            let call = try? JSONDecoder().decode(KeyringHelperCall.self, from: Data(input))
        else {
            FileDescriptorIO.write(2, Array("rc-agent keyring-helper: no request on stdin (the agent runs this)\n".utf8))
            return 64
        }
        let reply = await answer(call.request, store: LibSecretStore(timeout: call.timeout))
        guard let output = try? JSONEncoder().encode(reply) else { return 1 }
        FileDescriptorIO.write(1, Array(output))
        return 0
    }

    private static func answer(_ request: KeyringHelperRequest, store: LibSecretStore) async -> KeyringHelperReply {
        do {
            switch request {
            case .load(let profile): return .credential(try await store.load(profile: profile).map(KeyringHelperCredential.init))
            case .save(let credential):
                try await store.save(credential.stored)
                return .done(true)
            case .delete(let profile): return .done(try await store.delete(profile: profile))
            case .list: return .summaries(try await store.list())
            case .reconcile(let profile): return .done(try await store.reconcile(profile: profile))
            case .notify(let summary, let body): return .done(await FreedesktopNotifier().notify(summary: summary, body: body))
            }
        } catch let error as KeyringError {
            return .failed(error)
        } catch {
            return .failed(.failed(detail: "\(error)"))
        }
    }
}

/// One request to the helper, with the keyring timeout the agent was started with.
struct KeyringHelperCall: Codable {
    var timeout: Double
    var request: KeyringHelperRequest
}

/// What the agent asks the helper.
enum KeyringHelperRequest: Codable {
    case load(profile: String)
    case save(KeyringHelperCredential)
    case delete(profile: String)
    case list
    case reconcile(profile: String)
    case notify(summary: String, body: String)
}

/// The helper's answer.
enum KeyringHelperReply: Codable {
    case credential(KeyringHelperCredential?)
    case summaries([CredentialSummary])
    case done(Bool)
    case failed(KeyringError)
}

/// A ``StoredCredential`` on the helper's pipes, its secret included (``Secret`` itself has no
/// encoding, so that nothing else can write one out by accident).
struct KeyringHelperCredential: Codable {
    var profile: String
    var clientID: String
    var url: String
    var secret: String
    var created: Date
    var storedAt: Date?

    init(_ credential: StoredCredential) {
        (profile, clientID, url) = (credential.profile, credential.clientID, credential.url)
        (secret, created, storedAt) = (credential.secret.reveal(), credential.created, credential.storedAt)
    }

    var stored: StoredCredential {
        StoredCredential(
            profile: profile, clientID: clientID, url: url, secret: Secret(secret), created: created, storedAt: storedAt)
    }
}

/// One helper's process as the task that waits for it sees it: cancelling the task kills it,
/// until it is reaped (so a pid the system may have reused is never signalled).
private final class HelperChild: Sendable {
    private enum State { case starting, running(pid_t), cancelled, ended }
    private let state = Mutex(State.starting)

    /// Spawned: a cancellation that came first kills it now.
    func started(_ pid: pid_t) {
        state.withLock {
            if case .cancelled = $0 { kill(pid, SIGKILL) } else { $0 = .running(pid) }
        }
    }

    func cancel() {
        state.withLock {
            if case .running(let pid) = $0 { kill(pid, SIGKILL) }
            if case .ended = $0 { return }
            $0 = .cancelled
        }
    }

    /// Its output is read and it is about to be reaped; true when it was cancelled.
    func ended() -> Bool {
        state.withLock { state in
            defer { state = .ended }
            if case .cancelled = state { return true }
            return false
        }
    }
}

/// Runs one helper per call: spawn, request on its stdin, answer from its stdout, reap.
struct KeyringHelperProcess: Sendable {
    /// The largest request or answer on the pipes (a credential or a list of summaries).
    static let sizeLimit = 1 << 20

    let executable: String
    let environment: [String: String]
    let timeout: Double

    var unexpected: KeyringError { .failed(detail: "the keyring helper answered something other than what was asked") }

    /// Runs `request` in a new helper; throws the ``KeyringError`` the helper met, or
    /// `CancellationError` when the task is cancelled (the helper is killed: shutting down never
    /// waits for a keyring).
    func call(_ request: KeyringHelperRequest) async throws -> KeyringHelperReply {
        if let missing = LibSecretStore.missingBus(environment) { throw KeyringError.unavailable(detail: missing) }
        let input: [UInt8]
        do {
            input = Array(try JSONEncoder().encode(KeyringHelperCall(timeout: timeout, request: request)))
        } catch {
            throw KeyringError.failed(detail: "the keyring helper's request could not be encoded: \(error)")
        }
        // The helper bounds its own call by `timeout`; this bounds the helper (a hung start, a
        // bus that never answers the connection) a little later, and kills it.
        let (executable, environment, limit) = (executable, environment, timeout + 5)
        let child = HelperChild()
        let reply = try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { continuation in
                DispatchQueue.global().async {
                    continuation.resume(with: Result {
                        try Self.run(executable: executable, environment: environment, input: input, seconds: limit, child: child)
                    })
                }
            }
        } onCancel: {
            child.cancel()
        }
        if case .failed(let error) = reply { throw error }
        return reply
    }

    /// Blocking: the child's whole life.
    private static func run(
        executable: String, environment: [String: String], input: [UInt8], seconds: Double, child: HelperChild
    ) throws -> KeyringHelperReply {
        let deadline = ContinuousClock.now + .seconds(seconds)
        // The request goes over a socket, not a pipe: a helper that ends before reading it would
        // raise SIGPIPE in this process, which `send(MSG_NOSIGNAL)` does not.
        guard let toChild = Self.channel(socket: true),
            let fromChild = Self.channel(socket: false) ?? { toChild.forEach { close($0) }; return nil }()
        else { throw KeyringError.failed(detail: "pipe: \(String(cString: strerror(errno)))") }
        let pid: pid_t
        do {
            pid = try ProcessSpawn.spawn(
                path: executable, argv: ["rc-agent", KeyringHelper.command], environment: environment,
                stdin: toChild[0], stdout: .descriptor(fromChild[1]), stderr: .descriptor(2), closeInherited: true)
        } catch {
            (toChild + fromChild).forEach { close($0) }
            throw KeyringError.failed(detail: "the keyring helper could not be started: \(error)")
        }
        child.started(pid)
        close(toChild[0])
        close(fromChild[1])
        // A request is far smaller than a socket's buffer: this never waits for the child.
        send(all: input, to: toChild[1])
        close(toChild[1])
        let output = read(fromChild[0], until: deadline)
        close(fromChild[0])
        let cancelled = child.ended()
        if output == nil { kill(pid, SIGKILL) }
        var status: Int32 = 0
        while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
        if cancelled { throw CancellationError() }
        guard let output else { throw KeyringError.timedOut(seconds: seconds) }
        guard let reply = try? JSONDecoder().decode(KeyringHelperReply.self, from: Data(output)) else {
            throw KeyringError.failed(
                detail: "the keyring helper ended with status \(ProcessSpawn.exitStatus(status)) without an answer")
        }
        return reply
    }

    /// A pipe, or a pair of connected sockets, whose ends are closed on exec (the helper gets
    /// copies as its stdin and stdout). (`pipe2` and `SOCK_CLOEXEC` are hidden from Swift's Glibc
    /// module: a helper started by another call between the two steps closes what it inherits
    /// above stderr.)
    private static func channel(socket: Bool) -> [CInt]? {
        var ends: [CInt] = [-1, -1]
        let made = socket ? socketpair(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0, &ends) : Glibc.pipe(&ends)
        guard made == 0 else { return nil }
        for end in ends { _ = fcntl(end, F_SETFD, FD_CLOEXEC) }
        return ends
    }

    /// Sends `bytes`; stops quietly when the helper has gone.
    private static func send(all bytes: [UInt8], to fd: CInt) {
        var offset = 0
        while offset < bytes.count {
            let n = bytes.withUnsafeBytes { Glibc.send(fd, $0.baseAddress! + offset, $0.count - offset, Int32(MSG_NOSIGNAL)) }
            if n < 0 { if errno == EINTR { continue }; return }
            offset += n
        }
    }

    /// All of `fd` up to end of file, or nil when `deadline` passes first.
    private static func read(_ fd: CInt, until deadline: ContinuousClock.Instant) -> [UInt8]? {
        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 16 * 1024)
        while bytes.count < sizeLimit {
            let left = deadline - ContinuousClock.now
            guard left > .zero else { return nil }
            var entry = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
            let ready = poll(&entry, 1, Int32(left / .milliseconds(1)) + 1)
            if ready < 0 && errno == EINTR { continue }
            guard ready > 0 else { return ready == 0 ? nil : bytes }
            let n = chunk.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress!, $0.count) }
            if n < 0 && errno == EINTR { continue }
            guard n > 0 else { return bytes }
            bytes.append(contentsOf: chunk[0..<n])
        }
        return bytes
    }
}
