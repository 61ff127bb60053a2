import CEpoll
import FoundationEssentials
import Glibc
import Logging
import RCAgentCore
import Synchronization

/// ssh-agent's loop in front of NIO: one thread that accepts every connection, checks the peer's
/// uid before it reads a byte, and answers cached `GET /v1/token` requests straight from the
/// snapshot, a read and a write each. The first bytes it cannot answer (another route, a miss,
/// an incomplete or unusual head, a refused peer) hand the connection, with those bytes, to NIO
/// and the router for good, so everything but the fast path is served as before.
///
/// Why: NIO spends a channel, a pipeline and a hop to another event loop on every connection;
/// that held a connection per token to 0.4× ssh-agent's rate, the bare NIO server itself to about
/// half of it (docs/ARCHITECTURE.md, "One `GET /v1/token`, from accept to answer").
///
/// What it keeps of the server's rules: the peer-uid check on every connection before anything
/// is parsed; the connection limit (its connections count with NIO's); the request timeout (an
/// idle connection is closed once it has passed, at most a sweep later); `Connection: close`;
/// answers in the order asked (it answers only while it has handed nothing on); the audit
/// (``ServedTokenAudit``).
final class FrontDoor: Sendable {
    /// What the front door asks of the server; called on the front door's thread.
    struct Server: Sendable {
        /// Counts a connection the front door takes; false: the server is full.
        var admit: @Sendable () -> Bool
        /// A connection the front door took has closed.
        var closed: @Sendable () -> Void
        /// NIO serves `fd` from now on, starting with `read` (bytes read off it and not answered).
        /// `peer` is set for a connection the front door took (its place in the limit goes with it);
        /// nil for one it did not take, which NIO checks and refuses itself.
        var handOff: @Sendable (_ fd: CInt, _ read: [UInt8], _ peer: PeerCredentials?) -> Void
        /// True while NIO has too many handed-over connections still waiting for their first
        /// answer: the front door accepts nothing meanwhile (they wait in the listen backlog).
        var backlogFull: @Sendable () -> Bool
        /// The listener and every connection the front door held are closed: after ``stop()``, or
        /// on its own after an accept error it cannot recover from (`failed`).
        var stopped: @Sendable (_ failed: Bool) -> Void
    }

    fileprivate let listener: CInt
    /// An eventfd: ``stop()`` writes it.
    fileprivate let wake: CInt
    fileprivate let poller: CInt
    fileprivate let fastPath: TokenFastPath?
    fileprivate let limits: AgentServerLimits
    fileprivate let allowedUIDs: @Sendable () -> Set<UInt32>
    fileprivate let server: Server
    fileprivate let logger: Logger
    private let stopRequested = Atomic(false)

    /// Takes over `listener` (a listening socket) once started: the front door closes it when it
    /// stops. Until then (and when it cannot start) the caller still owns it.
    init(
        listener: CInt, fastPath: TokenFastPath?, limits: AgentServerLimits,
        allowedUIDs: @escaping @Sendable () -> Set<UInt32>, server: Server, logger: Logger
    ) throws(SocketSetupError) {
        let wake = eventfd(0, CInt(EFD_CLOEXEC) | CInt(EFD_NONBLOCK))
        guard wake >= 0 else { throw SocketSetupError("cannot make an eventfd: \(errnoText())") }
        let poller = epoll_create1(CInt(EPOLL_CLOEXEC))
        guard poller >= 0 else {
            close(wake)
            throw SocketSetupError("cannot make an epoll instance: \(errnoText())")
        }
        self.listener = listener
        self.wake = wake
        self.poller = poller
        self.fastPath = fastPath
        self.limits = limits
        self.allowedUIDs = allowedUIDs
        self.server = server
        self.logger = logger
        _ = fcntl(listener, F_SETFL, fcntl(listener, F_GETFL) | O_NONBLOCK)
        guard watch(listener, Self.input, .add), watch(wake, Self.input, .add) else {
            closeDescriptors()
            throw SocketSetupError("cannot watch the listening socket: \(errnoText())")
        }
    }

    /// Starts serving on a thread of its own.
    func start() throws(SocketSetupError) {
        guard DetachedThread.start({ [self] in Loop(door: self).run() }) else {
            closeDescriptors()
            throw SocketSetupError("cannot start the agent's accept thread: \(errnoText())")
        }
    }

    /// Closes the listener and the connections the front door holds (they are idle: it answers a
    /// request as it reads it), then tells the server (``Server/stopped``). Once; from any thread.
    func stop() {
        guard !stopRequested.exchange(true, ordering: .relaxed) else { return }
        var one: UInt64 = 1
        _ = write(wake, &one, 8)
    }

    /// Closes what the front door made itself, when it cannot start.
    private func closeDescriptors() {
        close(poller)
        close(wake)
    }

    fileprivate enum Change {
        case add, modify
        var operation: CInt { self == .add ? EPOLL_CTL_ADD : EPOLL_CTL_MOD }
    }

    fileprivate static let input = EPOLLIN.rawValue | EPOLLRDHUP.rawValue
    fileprivate static let output = EPOLLOUT.rawValue

    /// Asks the poller for `events` on `fd`; false with `errno` set when it refused.
    @discardableResult
    fileprivate func watch(_ fd: CInt, _ events: UInt32, _ change: Change) -> Bool {
        var event = epoll_event()
        event.events = events
        event.data.fd = fd
        return epoll_ctl(poller, change.operation, fd, &event) == 0
    }
}

/// One connection the front door holds.
private final class Connection {
    let fd: CInt
    let peer: PeerCredentials
    /// When the connection is closed if nothing happens (monotonic nanoseconds).
    var deadline: UInt64
    /// Answer bytes the socket has not taken yet; nothing more is read until it has.
    var unsent: [UInt8] = []
    /// Bytes read behind an answer still in `unsent`, served once it has gone.
    var unread: [UInt8] = []
    /// A `Connection: close` request was answered: close once `unsent` is empty.
    var closesAfterAnswer = false
    /// The output is closed after `Connection: close`: what the client still sends is dropped
    /// until it closes or goes quiet, for at most a while (closing with unread input would reset
    /// it): until then (monotonic nanoseconds).
    var drainingUntil: UInt64?
    var memo: TokenFastPath.ConnectionMemo?
    /// Read once, at the connection's first token (for the audit).
    lazy var executable = peer.executable
    /// Set at the connection's first token (for the audit).
    var started: UInt64??

    init(fd: CInt, peer: PeerCredentials, deadline: UInt64) {
        self.fd = fd
        self.peer = peer
        self.deadline = deadline
    }
}

/// The front door's thread: everything here runs on it alone.
private final class Loop {
    private let door: FrontDoor
    private var connections: [CInt: Connection] = [:]
    private let peers = PeerProcesses()
    private let scratch = UnsafeMutableRawBufferPointer.allocate(byteCount: 32 * 1024, alignment: 16)
    private var events = [epoll_event](repeating: epoll_event(), count: 64)
    /// Accepting pauses until then after running out of descriptors or memory.
    private var listenerPausedUntil: UInt64?
    /// Accepting pauses while NIO catches up with the connections handed to it.
    private var waitingForNIO = false
    /// The poller watches the listener: it does unless accepting pauses for either reason.
    private var listenerWatched = true
    private var nextSweep: UInt64 = 0
    private let timeout: UInt64
    private let lingerIdle: UInt64
    private let lingerTotal: UInt64

    /// How often idle connections are checked against their deadline.
    private static let sweepInterval: UInt64 = 250_000_000
    /// How long accepting pauses after EMFILE, ENFILE, ENOBUFS or ENOMEM.
    private static let acceptPause: UInt64 = 100_000_000

    init(door: FrontDoor) {
        self.door = door
        timeout = UInt64(max(door.limits.requestTimeout.nanoseconds, 0))
        lingerIdle = UInt64(RequestLimitHandler.lingerIdle.nanoseconds)
        lingerTotal = UInt64(RequestLimitHandler.lingerTotal.nanoseconds)
    }

    deinit { scratch.deallocate() }

    func run() {
        var failed = false
        serving: while true {
            let waitMilliseconds: CInt =
                waitingForNIO ? 5 : connections.isEmpty && listenerPausedUntil == nil ? -1 : 250
            let count = events.withUnsafeMutableBufferPointer {
                epoll_wait(door.poller, $0.baseAddress, CInt($0.count), waitMilliseconds)
            }
            if count < 0 {
                guard errno == EINTR else {
                    door.logger.error("the agent's accept loop failed; stopping", metadata: ["error": "\(errnoText())"])
                    failed = true
                    break serving
                }
                continue
            }
            for index in 0..<Int(count) {
                let event = events[index]
                let fd = event.data.fd
                if fd == door.wake { break serving }
                if fd == door.listener {
                    guard acceptAll() else {
                        failed = true
                        break serving
                    }
                } else if let connection = connections[fd] {
                    serve(connection, events: event.events)
                }
            }
            housekeeping()
        }
        Glibc.close(door.listener)
        for connection in connections.values { close(connection) }
        peers.forgetAll()
        Glibc.close(door.poller)
        Glibc.close(door.wake)
        door.server.stopped(failed)
    }

    // MARK: Accepting

    /// Takes every waiting connection (at most a batch); false after an error that ends serving.
    private func acceptAll() -> Bool {
        for _ in 0..<64 {
            if door.server.backlogFull() {
                waitingForNIO = true
                watchListenerIfAccepting()
                return true
            }
            let fd = accept4(door.listener, nil, nil, CInt(SOCK_NONBLOCK.rawValue | SOCK_CLOEXEC.rawValue))
            guard fd >= 0 else {
                switch errno {
                case EAGAIN, EWOULDBLOCK: return true
                case EINTR, ECONNABORTED, EPROTO: continue
                case EMFILE, ENFILE, ENOBUFS, ENOMEM:
                    door.logger.warning("cannot accept a connection; pausing", metadata: ["error": "\(errnoText())"])
                    listenerPausedUntil = Self.monotonic() + Self.acceptPause
                    watchListenerIfAccepting()
                    return true
                default:
                    door.logger.error("the listening socket failed; stopping", metadata: ["error": "\(errnoText())"])
                    return false
                }
            }
            guard let peer = PeerCredentials.of(descriptor: fd), door.allowedUIDs().contains(peer.uid),
                door.server.admit()
            else {
                // NIO checks the peer again and answers 403 or 503 (and logs a refused peer).
                door.server.handOff(fd, [], nil)
                continue
            }
            let connection = Connection(fd: fd, peer: peer, deadline: Self.monotonic() + timeout)
            guard door.watch(fd, FrontDoor.input, .add) else {
                // No room to watch it here: NIO serves it whole.
                door.server.handOff(fd, [], peer)
                continue
            }
            connections[fd] = connection
            // The client sends its request as soon as it has connected, and waking this thread
            // takes longer than that: it is usually here already, and answering it now saves a
            // round through the poller (a wakeup per request). Nothing there yet: the poller says when.
            serve(connection, events: EPOLLIN.rawValue)
        }
        return true
    }

    // MARK: Serving

    private func serve(_ connection: Connection, events: UInt32) {
        if !connection.unsent.isEmpty {
            guard events & (FrontDoor.output | EPOLLERR.rawValue | EPOLLHUP.rawValue) != 0 else { return }
            guard send(connection, []) else { return }
            if connection.closesAfterAnswer {
                finish(connection, more: !connection.unread.isEmpty)
                return
            }
            door.watch(connection.fd, FrontDoor.input, .modify)
            let unread = connection.unread
            connection.unread = []
            if !unread.isEmpty { unread.withUnsafeBytes { answer(connection, $0) } }
            return
        }
        let count = recv(connection.fd, scratch.baseAddress, scratch.count, 0)
        if count < 0, errno == EAGAIN || errno == EINTR { return }
        guard count > 0 else {
            close(connection)
            return
        }
        if let until = connection.drainingUntil {
            connection.deadline = min(Self.monotonic() + lingerIdle, until)
            return
        }
        answer(connection, UnsafeRawBufferPointer(rebasing: scratch[0..<count]))
    }

    /// Answers the requests in `bytes` in order while the fast path can; hands the connection to
    /// NIO with the rest at the first it cannot.
    private func answer(_ connection: Connection, _ bytes: UnsafeRawBufferPointer) {
        var offset = 0
        while offset < bytes.count {
            let rest = UnsafeRawBufferPointer(rebasing: bytes[offset...])
            // The clock is read only for a request the front door may answer.
            guard let fastPath = door.fastPath, let (request, length) = FrontDoorRequest.parse(rest, limits: door.limits),
                case let now = fastPath.clock.now(), let served = fastPath.answer(request, now: now, memo: &connection.memo)
            else {
                handOff(connection, read: Array(rest))
                return
            }
            let started = connection.started ?? peers.started(connection.peer, connection: connection.fd)
            connection.started = started
            fastPath.audit.served(
                served.profile, peer: connection.peer, executable: connection.executable, started: started, now: now)
            offset += length
            connection.deadline = Self.monotonic() + timeout
            let after = UnsafeRawBufferPointer(rebasing: bytes[offset...])
            if request.closes {
                // As the router does: the answer is the connection's last; what follows is not read.
                connection.closesAfterAnswer = true
                connection.unread = Array(after)
                guard send(connection, served.answer.wire) else { return }
                finish(connection, more: !after.isEmpty)
                return
            }
            guard send(connection, served.answer.wire) else {
                connection.unread = Array(after)
                return
            }
        }
    }

    /// Sends `connection.unsent`, then `bytes`; true when all went. Otherwise the rest waits for
    /// the socket to take it (the connection is watched for output only) or, on an error, the
    /// connection is closed.
    private func send(_ connection: Connection, _ bytes: [UInt8]) -> Bool {
        let pending = connection.unsent.isEmpty ? bytes : connection.unsent + bytes
        let sent = pending.withUnsafeBytes {
            Glibc.send(connection.fd, $0.baseAddress, $0.count, CInt(MSG_NOSIGNAL) | CInt(MSG_DONTWAIT))
        }
        if sent == pending.count {
            connection.unsent = []
            return true
        }
        guard sent >= 0 || errno == EAGAIN || errno == EINTR else {
            close(connection)
            return false
        }
        let wasWaiting = !connection.unsent.isEmpty
        connection.unsent = Array(pending[max(sent, 0)...])
        if !wasWaiting { door.watch(connection.fd, FrontDoor.output, .modify) }
        return false
    }

    /// After a `Connection: close` answer went out: closes now, unless the client sent more (or
    /// may have), which is read and dropped until it closes or goes quiet.
    private func finish(_ connection: Connection, more: Bool) {
        var byte: UInt8 = 0
        if !more, recv(connection.fd, &byte, 1, CInt(MSG_PEEK) | CInt(MSG_DONTWAIT)) < 0, errno == EAGAIN {
            close(connection)
            return
        }
        shutdown(connection.fd, CInt(SHUT_WR))
        let now = Self.monotonic()
        connection.drainingUntil = now + lingerTotal
        connection.unread = []
        connection.deadline = now + lingerIdle
        door.watch(connection.fd, FrontDoor.input, .modify)
    }

    private func handOff(_ connection: Connection, read: [UInt8]) {
        epoll_ctl(door.poller, EPOLL_CTL_DEL, connection.fd, nil)
        connections[connection.fd] = nil
        door.server.handOff(connection.fd, read, connection.peer)
    }

    private func close(_ connection: Connection) {
        connections[connection.fd] = nil
        Glibc.close(connection.fd)
        door.server.closed()
    }

    // MARK: Time

    /// Closes the connections past their deadline and watches the listener again after a pause.
    private func housekeeping() {
        let now = Self.monotonic()
        if let until = listenerPausedUntil, now >= until { listenerPausedUntil = nil }
        if waitingForNIO, !door.server.backlogFull() { waitingForNIO = false }
        watchListenerIfAccepting()
        guard now >= nextSweep, !connections.isEmpty else { return }
        nextSweep = now + Self.sweepInterval
        for connection in connections.values where connection.deadline <= now { close(connection) }
    }

    /// Watches the listener while accepting is not paused, and only then.
    private func watchListenerIfAccepting() {
        let accepting = listenerPausedUntil == nil && !waitingForNIO
        guard accepting != listenerWatched else { return }
        if accepting {
            door.watch(door.listener, FrontDoor.input, .add)
        } else {
            epoll_ctl(door.poller, EPOLL_CTL_DEL, door.listener, nil)
        }
        listenerWatched = accepting
    }

    private static func monotonic() -> UInt64 {
        var spec = timespec()
        clock_gettime(CLOCK_MONOTONIC, &spec)
        return UInt64(spec.tv_sec) * 1_000_000_000 + UInt64(spec.tv_nsec)
    }
}

/// `errno` as text.
private func errnoText() -> String { String(cString: strerror(errno)) }
