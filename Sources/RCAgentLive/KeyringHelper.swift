import FoundationEssentials
import Glibc
import RCAgentCore
import Synchronization

/// The agent's Secret Service keyring: every libsecret call runs in a short-lived child,
/// `rc-agent keyring-helper`, that answers one request on a socket and exits.
///
/// libsecret brings GLib, GObject, GIO and a dozen more libraries: about 4 MB of the agent's
/// resident memory once mapped, for good, although the agent reads the keyring only when it
/// fetches a token (about once an hour per profile), for `GET /v1/status` and for a rotation
/// reminder. In a child they cost that child's start instead (about 10–20 ms per call). Commands
/// keep calling ``LibSecretStore`` in their own process: they end soon after.
///
/// The child runs the same binary (`/proc/self/exe`, so an upgrade on disk never mixes two
/// versions), with the part of the agent's environment that says where the session bus is, and
/// a request on its stdin; its answer on stdout holds the Client Secret for a `load`, which goes
/// only to the agent over that socket. Errors come back as the ``KeyringError`` the child met,
/// so status, doctor and the token answers name the same cause as before.
public struct KeyringProcessStore: CredentialStore {
    let helper: KeyringHelperProcess
    /// Lists in a row share helpers: a flood of `GET /v1/status` runs one at a time.
    private let lists = FreshResults<[CredentialSummary]>()

    /// - Parameters:
    ///   - executable: the rc-agent binary to run as the helper.
    ///   - environment: the agent's environment; the helper gets only what the session bus and
    ///     GLib need of it (``KeyringHelperProcess/environment(from:)``).
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
        let helper = helper
        return try await lists.value {
            guard case .summaries(let summaries) = try await helper.call(.list) else { throw helper.unexpected }
            return summaries
        }
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
        // The answer may hold a Client Secret: it goes to the agent that started this helper over
        // the socket it made, never to a terminal or a pipe someone typed.
        guard stdinIsParentsSocket() else {
            FileDescriptorIO.write(2, Array("rc-agent keyring-helper: only the agent runs this\n".utf8))
            return 64
        }
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

    /// True when stdin is a Unix socket whose other end this process's parent holds, as the
    /// same user.
    private static func stdinIsParentsSocket() -> Bool {
        guard let peer = PeerCredentials.of(descriptor: 0) else { return false }
        return peer.pid == getppid() && peer.uid == getuid()
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

/// A ``StoredCredential`` on the helper's sockets, its secret included (``Secret`` itself has no
/// encoding, so that nothing else can write one out by accident).
struct KeyringHelperCredential: Codable, CustomStringConvertible, CustomDebugStringConvertible {
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

    var description: String { "KeyringHelperCredential(profile: \(profile), secret: <redacted>)" }
    var debugDescription: String { description }

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
    /// The largest request or answer on the sockets (a credential or a list of summaries).
    static let sizeLimit = 1 << 20

    let executable: String
    let environment: [String: String]
    let timeout: Double

    init(executable: String, environment: [String: String], timeout: Double) {
        self.executable = executable
        self.environment = Self.environment(from: environment)
        self.timeout = timeout
    }

    /// What the helper needs of the agent's environment: where the session bus and the runtime
    /// directory are, the user and the locale. Nothing else: the agent's own variables (a Client
    /// Secret among them, for `env` profiles) would be readable in `/proc/PID/environ` until the
    /// helper makes itself non-dumpable.
    static func environment(from agent: [String: String]) -> [String: String] {
        let names: Set = ["DBUS_SESSION_BUS_ADDRESS", "XDG_RUNTIME_DIR", "HOME", "USER", "LOGNAME", "PATH", "LANG", "LANGUAGE"]
        return agent.filter { names.contains($0.key) || $0.key.hasPrefix("LC_") }
    }

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
            // The helper's whole life blocks: on a thread of its own, as every blocking wait here.
            try await withCheckedThrowingContinuation { continuation in
                DetachedThread.run {
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
        // Sockets, not pipes: a helper that ends before reading its request would raise SIGPIPE
        // in this process, which `send(MSG_NOSIGNAL)` does not; and the helper checks that its
        // stdin comes from its parent (SO_PEERCRED).
        guard let toChild = Self.socketPair(), let fromChild = Self.socketPair() ?? { toChild.forEach { close($0) }; return nil }()
        else { throw KeyringError.failed(detail: "socketpair: \(String(cString: strerror(errno)))") }
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
        FileDescriptorIO.send(toChild[1], input)
        close(toChild[1])
        let output = read(fromChild[0], until: deadline)
        close(fromChild[0])
        let cancelled = child.ended()
        if output == nil { kill(pid, SIGKILL) }
        var status: Int32 = 0
        while waitpid(pid, &status, 0) < 0 && errno == EINTR {}
        if cancelled { throw CancellationError() }
        guard var output else { throw KeyringError.timedOut(seconds: seconds) }
        var answer = Data(output)
        // The answer may hold the secret: no copy of it stays behind in freed memory.
        defer {
            answer.resetBytes(in: 0..<answer.count)
            output.withUnsafeMutableBytes { if let start = $0.baseAddress { _ = memset(start, 0, $0.count) } }
        }
        guard let reply = try? JSONDecoder().decode(KeyringHelperReply.self, from: answer) else {
            throw KeyringError.failed(
                detail: "the keyring helper ended with status \(ProcessSpawn.exitStatus(status)) without an answer")
        }
        return reply
    }

    /// Two connected sockets, closed on exec (the helper gets copies as its stdin and stdout).
    private static func socketPair() -> [CInt]? {
        var ends: [CInt] = [-1, -1]
        guard socketpair(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0, &ends) == 0 else { return nil }
        return ends
    }

    /// All of `fd` up to end of file, or nil when `deadline` passes first.
    private static func read(_ fd: CInt, until deadline: ContinuousClock.Instant) -> [UInt8]? {
        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 16 * 1024)
        while bytes.count < sizeLimit {
            let left = deadline - ContinuousClock.now
            guard left > .zero else { return nil }
            var entry = pollfd(fd: fd, events: Int16(POLLIN), revents: 0)
            let ready = poll(&entry, 1, Int32(min(left, .seconds(60)) / .milliseconds(1)) + 1)
            if ready < 0 && errno == EINTR { continue }
            guard ready > 0 else { return ready == 0 ? nil : bytes }
            let n = chunk.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress!, $0.count) }
            if n < 0 && errno == EINTR { continue }
            guard n > 0 else { return bytes }
            bytes.append(contentsOf: chunk[0..<n])
            chunk.withUnsafeMutableBytes { _ = memset($0.baseAddress!, 0, n) }
        }
        return bytes
    }
}

/// Runs `body` for callers that come while none is running, and once more, shared, for all that
/// come while one is: every caller gets a result that began after it asked (so a list never
/// misses an item stored before the request), yet no more than one runs at a time.
actor FreshResults<Value: Sendable> {
    private var running: Task<Value, any Error>?
    private var next: Task<Value, any Error>?
    /// How many callers asked, in all.
    private(set) var callers = 0

    func value(_ body: @escaping @Sendable () async throws -> Value) async throws -> Value {
        callers += 1
        let task: Task<Value, any Error>
        if let next {
            task = next
        } else {
            let before = running
            task = Task {
                if let before { _ = try? await before.value }
                self.started()
                return try await body()
            }
            if before == nil { running = task } else { next = task }
        }
        // A cancelled caller (the agent stopping) cancels the shared run too: waiting for it
        // would hold up the shutdown, and every other caller is stopping as well.
        return try await withTaskCancellationHandler { try await task.value } onCancel: { task.cancel() }
    }

    private func started() {
        if let next {
            running = next
            self.next = nil
        }
    }
}
