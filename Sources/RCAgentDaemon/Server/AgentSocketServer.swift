import RCAgentCore
import FoundationEssentials
import Hummingbird
import HummingbirdCore
import Logging
import NIOCore
import NIOHTTP1
import NIOHTTPTypes
import NIOHTTPTypesHTTP1
import NIOPosix
import ServiceLifecycle
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// Where the agent listens.
public enum AgentListener: Sendable {
    /// Bind this path: private directory checked, stale socket probed, socket 0600 from birth,
    /// removed at exit.
    case path(String)
    /// A socket already bound and listening (systemd socket activation); `path` is only reported.
    case descriptor(CInt, path: String?)
}

/// Limits that keep one client from starving the others.
public struct AgentServerLimits: Sendable, Equatable {
    /// Connections served at once; more are answered 503 and closed.
    public var maximumConnections = 512
    /// A client must deliver a complete request this long after connecting or after the previous
    /// response, or the connection is closed (slow-loris and idle keep-alive alike).
    public var requestTimeout: TimeAmount = .seconds(10)
    /// All header fields of a request together, in bytes.
    public var maximumHeaderBytes = 16 * 1024
    /// Number of header fields.
    public var maximumHeaderCount = 64
    /// A request body to the agent's own endpoints; more is answered `413` and the connection closed.
    public var maximumBodyBytes = 16 * 1024
    /// A proxied request body (`/v1/proxy/…`, streamed to the tenant): `[defaults] proxy_max_body`.
    public var maximumProxyBodyBytes = Settings.defaultProxyMaxBody
    /// Proxied requests in progress per profile (the proxy client's connections per host); more
    /// are answered `503` (`proxy_busy`) at once rather than queued behind them.
    public var maximumProxyStreamsPerProfile = HTTPSettings.defaultConnectionsPerHost
    /// Once this many connections were open at once, the allocator's free memory goes back to the
    /// system when they have all closed (with a ``MemoryReleasing`` given to the server).
    public var memoryReleaseBurst = 64
    /// After this many connections in all since the last release, the allocator's free memory goes
    /// back to the system once none is open (5×10⁴ bad requests, a connection or two each, left
    /// about 0.9 MB more without it).
    public var memoryReleaseChurn = 1000
    /// How long graceful shutdown lets requests in progress finish.
    public var shutdownGrace: TimeAmount = .milliseconds(1500)

    public init() {}
}

/// What a request handler learns about its request besides the request itself: the peer.
public struct AgentRequestContextSource: RequestContextSource {
    public let logger: Logger
    public let peer: PeerCredentials
    /// The connection, for `100 Continue`; nil where there is none (a router tested without a socket).
    public let channel: (any Channel)?

    public init(logger: Logger, peer: PeerCredentials, channel: (any Channel)? = nil) {
        self.logger = logger
        self.peer = peer
        self.channel = channel
    }
}

/// Hummingbird request context for the socket API: carries the peer's credentials.
public struct AgentRequestContext: RequestContext {
    public typealias Source = AgentRequestContextSource
    public var coreContext: CoreRequestContextStorage
    /// The connecting process (`SO_PEERCRED`), already checked against the allow-list.
    public let peer: PeerCredentials
    private let channel: (any Channel)?

    public init(source: Source) {
        coreContext = .init(source: source)
        peer = source.peer
        channel = source.channel
    }

    /// The connection's event loop; nil where there is no connection.
    var eventLoop: (any EventLoop)? { channel?.eventLoop }

    /// Tells a client that sent `Expect: 100-continue` to send its body (nothing otherwise): a
    /// route calls it once it knows it will read the body.
    func acceptBody() async {
        try? await channel?.triggerUserOutboundEvent(RequestLimitHandler.AcceptBody()).get()
    }
}

/// HTTP/1.1 over a Unix socket: ``FrontDoor`` accepts every connection (on a socket it binds or
/// one systemd passed, which Hummingbird's own server cannot take) and answers cached tokens
/// itself; what it cannot answer goes to NIO's HTTP/1 codec and a router's responder through
/// Hummingbird's `HTTP1Channel`.
///
/// Every connection's peer uid is checked with `SO_PEERCRED` before any byte is parsed; a peer
/// that is not allowed gets a 403 and is closed, and it is logged.
///
/// A connection handed to NIO stays on its event loop while the token fast path there answers
/// everything it asks: only the first request (or parse error) that the fast path passes on wraps
/// it in an async channel and hands it to the accept loop, which serves it with the router from
/// then on.
public final class AgentSocketServer: Service, Sendable {
    private let listener: AgentListener
    private let responder: any HTTPResponder<AgentRequestContext>
    private let tokenFastPath: TokenFastPath?
    private let limits: AgentServerLimits
    private let allowedUIDs: @Sendable () -> Set<UInt32>
    private let onListening: @Sendable () async -> Void
    private let logger: Logger
    private let group: any EventLoopGroup
    private let connections = Mutex(OpenConnections())
    private let memoryRelease: BurstMemoryRelease?
    /// Connections handed to the router, in the order they first needed it.
    private let routed = AsyncStream.makeStream(of: RoutedConnection.self)

    /// The connections being served, and whether the server is stopping.
    private struct OpenConnections {
        var channels: [ObjectIdentifier: any Channel] = [:]
        /// Connections the front door holds.
        var atFrontDoor = 0
        /// Connections the front door took and handed to NIO that NIO has not set up yet.
        var handingOver = 0
        /// Connections the front door took and handed to NIO with no answer begun yet.
        var unanswered = 0
        /// Graceful shutdown or cancellation began (the listener is closing).
        var stopRequested = false
        /// The listener is closed and the connections are being closed.
        var stopping = false

        /// Every connection counted against the limit.
        var count: Int { channels.count + atFrontDoor + handingOver }
        /// The last connection has gone after the listener closed.
        var ended: Bool { stopping && count == 0 }
    }

    /// - Parameters:
    ///   - allowedUIDs: asked on every connection (so a reload can change it).
    ///   - onListening: called once the socket accepts connections (sd_notify, readiness).
    ///   - tokenFastPath: answers cached `GET /v1/token` on the event loop, in front of `responder`.
    ///   - memory: returns the allocator's free memory after a burst of connections or many in turn
    ///     (``AgentServerLimits/memoryReleaseBurst``, ``AgentServerLimits/memoryReleaseChurn``).
    public init(
        listener: AgentListener, responder: any HTTPResponder<AgentRequestContext>, tokenFastPath: TokenFastPath? = nil,
        limits: AgentServerLimits = AgentServerLimits(),
        allowedUIDs: @escaping @Sendable () -> Set<UInt32> = { [getuid()] },
        onListening: @escaping @Sendable () async -> Void = {},
        memory: (any MemoryReleasing)? = nil,
        eventLoopGroup: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton,
        logger: Logger = Logger(label: "rc-agent.server")
    ) {
        memoryRelease = memory.map {
            BurstMemoryRelease(releaser: $0, burst: limits.memoryReleaseBurst, churn: limits.memoryReleaseChurn)
        }
        self.listener = listener
        self.responder = responder
        self.tokenFastPath = tokenFastPath
        self.limits = limits
        self.allowedUIDs = allowedUIDs
        self.onListening = onListening
        self.group = eventLoopGroup
        self.logger = logger
    }

    /// Binds (or adopts) the socket, serves until graceful shutdown or cancellation, then stops
    /// accepting, lets requests in progress finish within the grace period, and removes the
    /// socket file it created.
    public func run() async throws {
        let (listener, createdSocket) = try bind()
        let removeSocket = { @Sendable [listener = self.listener] in
            if case .path(let path) = listener, let createdSocket { AgentSocket.remove(path, ifIdentity: createdSocket) }
        }
        // Also when serving ends early; removing twice is harmless (only the file this process bound).
        defer { removeSocket() }
        let logger = self.logger
        let frontDoor: FrontDoor
        do {
            frontDoor = try FrontDoor(
                listener: listener, fastPath: tokenFastPath, limits: limits, allowedUIDs: allowedUIDs,
                server: frontDoorServer(removeSocket: removeSocket), logger: logger)
            try frontDoor.start()
        } catch {
            close(listener)
            throw error
        }
        await onListening()
        let stop = { @Sendable in
            let first = self.connections.withLock { open in
                defer { open.stopRequested = true }
                return !open.stopRequested
            }
            // The front door then closes the listener and its connections, and calls back.
            if first { frontDoor.stop() }
        }
        // The fast path's coalesced audit counts go out at least once an interval, and at the end.
        let auditFlush = tokenFastPath.map { fastPath in
            let interval = TimeAmount.seconds(Int64(TokenFastPath.auditInterval))
            return group.next().scheduleRepeatedTask(initialDelay: interval, delay: interval) { _ in fastPath.flush() }
        }
        defer {
            auditFlush?.cancel()
            tokenFastPath?.flush()
        }
        await withDiscardingTaskGroup { group in
            // Graceful shutdown closes the listener and then every connection's input; the stream
            // of routed connections ends once the last connection has closed, so a connection
            // the fast path served until then still reaches the router with a late request.
            await withGracefulShutdownHandler {
                for await connection in routed.stream {
                    guard let (http, value) = connection.claim() else { continue }
                    group.addTask { await http.handle(value: value, logger: logger) }
                }
            } onGracefulShutdown: {
                stop()
            }
            // Cancelled rather than shut down: the same, without waiting for the connections.
            if Task.isCancelled { stop() }
        }
        logger.info("server stopped")
    }

    /// The server as the front door sees it: the connection count, NIO for what it hands on, and
    /// the end of serving once it has stopped.
    private func frontDoorServer(removeSocket: @escaping @Sendable () -> Void) -> FrontDoor.Server {
        FrontDoor.Server(
            admit: { [self] in
                connections.withLock { open in
                    guard open.count < limits.maximumConnections else { return false }
                    open.atFrontDoor += 1
                    memoryRelease?.opened(count: open.count)
                    return true
                }
            },
            closed: { [self] in
                changeConnections { open in
                    open.atFrontDoor -= 1
                    memoryRelease?.closed(remaining: open.count)
                }
            },
            handOff: { [self] fd, read, peer in
                connections.withLock { open in
                    if peer != nil {
                        open.unanswered += 1
                        open.atFrontDoor -= 1
                        open.handingOver += 1
                    }
                }
                adopt(fd, read: read, peer: peer)
            },
            backlogFull: { [self] in
                connections.withLock { $0.unanswered >= Self.handOffBacklog }
            },
            stopped: { [self] failed in
                if failed {
                    // As on a stop, so the agent exits (and systemd restarts it) instead of
                    // listening to nothing.
                    connections.withLock { $0.stopRequested = true }
                }
                // Gone before the connections in progress finish: `rc-agent stop` waits for the file.
                removeSocket()
                closeConnectionsGracefully()
                // Now, not only after the last request: a stop that runs out of time ends the process.
                tokenFastPath?.flush()
            })
    }

    // MARK: Listener

    /// The listening socket, and the identity of the socket file this server created (nil for
    /// one systemd passed).
    private func bind() throws -> (CInt, (dev: UInt64, ino: UInt64)?) {
        switch listener {
        case .descriptor(let fd, let path):
            logger.info("listening on the socket systemd passed", metadata: ["socket": "\(path ?? "fd \(fd)")"])
            return (fd, nil)
        case .path(let path):
            try AgentSocket.prepareDirectory(forSocket: path)
            try AgentSocket.clearStale(path)
            let fd = try AgentSocket.listen(at: path)
            logger.info("listening", metadata: ["socket": "\(path)"])
            return (fd, AgentSocket.identity(path))
        }
    }

    // MARK: Connections

    /// Serves `fd`, which the front door accepted, with NIO from now on: first `read`, the bytes it
    /// read off it. `peer`: the front door took it (checked, and counted in `handingOver`); nil:
    /// NIO checks the peer and the limit itself and refuses it.
    private func adopt(_ fd: CInt, read: [UInt8], peer: PeerCredentials?) {
        let initialized = Atomic(false)
        let answered = { @Sendable [self] in
            if peer != nil { connections.withLock { $0.unanswered -= 1 } }
        }
        ClientBootstrap(group: group)
            .channelOption(ChannelOptions.allowRemoteHalfClosure, value: true)
            .channelInitializer { [self] channel in
                initialized.store(true, ordering: .relaxed)
                do {
                    try channel.pipeline.syncOperations.addHandler(FirstAnswer(answered))
                } catch {
                    answered()
                    return channel.eventLoop.makeFailedFuture(error)
                }
                guard let peer else { return setUp(child: channel) }
                // Counted first: a set-up that fails closes the channel, which uncounts it.
                track(channel, handedOver: true)
                do {
                    if !read.isEmpty { try channel.pipeline.syncOperations.addHandler(ReadAhead(read)) }
                    try configureHTTP(channel, peer: peer)
                    return channel.eventLoop.makeSucceededVoidFuture()
                } catch {
                    return channel.eventLoop.makeFailedFuture(error)
                }
            }
            .withConnectedSocket(NIOBSDSocket.Handle(fd))
            .whenFailure { [self] error in
                logger.warning("cannot serve a connection", metadata: ["error": "\(error)"])
                // Failed before NIO made a channel of it: the descriptor is still ours.
                guard !initialized.load(ordering: .relaxed) else { return }
                answered()
                close(fd)
                guard peer != nil else { return }
                changeConnections { $0.handingOver -= 1 }
            }
    }

    private func setUp(child channel: any Channel) -> EventLoopFuture<Void> {
        PeerCredentials.of(channel: channel).flatMapThrowing { peer in
            guard let peer, self.allowedUIDs().contains(peer.uid) else {
                self.logger.warning(
                    "refused a connection from another user",
                    metadata: [
                        "peer_pid": "\(peer?.pid ?? 0)", "peer_uid": "\(peer.map { String($0.uid) } ?? "unknown")",
                        "peer_exe": "\(peer?.executable ?? "unknown")",
                    ])
                let error = AgentError.forbidden(uid: peer?.uid ?? UInt32.max)
                return try self.refuse(channel, status: "403 Forbidden", error: error)
            }
            guard self.track(channel, handedOver: false) else {
                self.logger.warning("too many connections; refusing one", metadata: ["peer_pid": "\(peer.pid)"])
                let error = AgentError(
                    .tooManyConnections, message: "the agent is serving too many connections", hint: "retry shortly")
                return try self.refuse(channel, status: "503 Service Unavailable", error: error)
            }
            try self.configureHTTP(channel, peer: peer)
        }
    }

    /// The pipeline HTTP1Channel.setup builds, up to the point where Hummingbird takes over:
    /// ``RouterHandoff`` adds the rest when the router is first needed.
    private func configureHTTP(_ channel: any Channel, peer: PeerCredentials) throws {
        let limits = self.limits
        var decoderLimits = NIOHTTPDecoderLimitConfiguration()
        decoderLimits.maxHeaderFieldSize = limits.maximumHeaderBytes
        decoderLimits.maxHeaderListSize = limits.maximumHeaderBytes
        decoderLimits.maxHeaderFieldCount = limits.maximumHeaderCount
        let pipeline = channel.pipeline.syncOperations
        try pipeline.configureHTTPServerPipeline(
            withPipeliningAssistance: false, withErrorHandling: false, withOutboundHeaderValidation: false,
            withEncoderConfiguration: .init(), withDecoderLimitConfiguration: decoderLimits)
        try pipeline.addHandler(HTTP1ToHTTPServerCodec(secure: false))
        try pipeline.addHandler(RequestLimitHandler(limits: limits))
        if let tokenFastPath { try pipeline.addHandler(TokenFastPathHandler(fastPath: tokenFastPath, peer: peer)) }
        try pipeline.addHandler(RouterHandoff { [self] channel in try self.handOff(channel, peer: peer) })
    }

    /// Wraps `channel` for Hummingbird (on its event loop, before the part that needs the router
    /// goes on) and hands it to the accept loop.
    private func handOff(_ channel: any Channel, peer: PeerCredentials) throws {
        let http = HTTP1Channel(
            responder: { [responder = self.responder, logger = self.logger] request, writer, channel in
                let context = AgentRequestContext(source: .init(logger: logger, peer: peer, channel: channel))
                let response: Response
                do {
                    response = try await responder.respond(to: request, context: context)
                } catch let error as HTTPParserError {
                    throw error
                } catch {
                    response = AgentResponse.error(
                        AgentError(.internalError, message: "internal error"))
                }
                try await writer.write(response: response.head, body: response.body)
            })
        try channel.pipeline.syncOperations.addHandler(HTTPConnectionStateHandler(logger: logger))
        let value = try HTTP1Channel.Value(
            wrappingChannelSynchronously: channel, configuration: .init(isOutboundHalfClosureEnabled: true))
        // After the stream ended (the server stopped) the connection is dropped unclaimed: it closes.
        routed.continuation.yield(RoutedConnection(http, value))
    }

    private func refuse(_ channel: any Channel, status: String, error: AgentError) throws {
        try channel.pipeline.syncOperations.addHandler(
            RefusalHandler(response: AgentResponse.raw(status: status, error: error)))
    }

    /// Connections the front door took and handed to NIO that may wait for their first answer at
    /// once; then it stops taking new ones until NIO catches up (as NIO's own acceptor would, on
    /// its busy event loops), so a flood of requests only the router answers cannot queue hundreds
    /// of them, each of which a stop would have to finish within its grace period. Refused
    /// connections do not count: counting them made a 1,000-client burst lose 128 connections
    /// without an answer (not explained; `make bench`'s burst shows it).
    static let handOffBacklog = 128

    /// Counts `channel` while it is open; false: over the limit (one `handedOver` by the front
    /// door already has its place).
    @discardableResult
    private func track(_ channel: any Channel, handedOver: Bool) -> Bool {
        let id = ObjectIdentifier(channel)
        let (admitted, stopping) = connections.withLock { open in
            if handedOver {
                open.handingOver -= 1
            } else {
                guard open.count < limits.maximumConnections else { return (false, open.stopping) }
            }
            open.channels[id] = channel
            if !handedOver { memoryRelease?.opened(count: open.count) }
            return (true, open.stopping)
        }
        guard admitted else { return false }
        channel.closeFuture.whenComplete { _ in
            self.changeConnections { open in
                open.channels.removeValue(forKey: id)
                self.memoryRelease?.closed(remaining: open.count)
            }
        }
        // Set up while the server stops: ends like the others.
        if stopping { closeGracefully(channel) }
        return true
    }

    /// Half-closes every connection (a request in progress still gets its response; an idle
    /// keep-alive connection ends now) and closes whatever is left after the grace period; the
    /// stream of routed connections ends with the last one.
    private func closeConnectionsGracefully() {
        let open = changeConnections { open in
            open.stopping = true
            return Array(open.channels.values)
        }
        for channel in open { closeGracefully(channel) }
    }

    /// Changes the connections' state under its lock; once the last connection has gone after
    /// the listener closed, the stream of routed connections ends.
    @discardableResult
    private func changeConnections<Result>(_ change: (inout OpenConnections) -> Result) -> Result {
        let (result, ended) = connections.withLock { open in (change(&open), open.ended) }
        if ended { routed.continuation.finish() }
        return result
    }

    private func closeGracefully(_ channel: any Channel) {
        channel.eventLoop.execute {
            // A connection still being set up is not registered with its loop yet, and closing
            // its input then breaks NIO's invariants; the full close below ends it.
            if channel.isActive { channel.close(mode: .input, promise: nil) }
        }
        channel.eventLoop.scheduleTask(in: limits.shutdownGrace) { channel.close(promise: nil) }
    }
}

/// The bytes the front door read off a connection before it handed it to NIO, given to the
/// pipeline as NIO's own first read (NIO reads the socket only after the channel is active).
final class ReadAhead: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer

    private let bytes: [UInt8]

    init(_ bytes: [UInt8]) { self.bytes = bytes }

    func channelActive(context: ChannelHandlerContext) {
        context.fireChannelActive()
        context.fireChannelRead(wrapInboundOut(context.channel.allocator.buffer(bytes: bytes)))
        context.fireChannelReadComplete()
        context.pipeline.syncOperations.removeHandler(context: context, promise: nil)
    }
}

/// Calls back once when the first answer bytes go out on a connection the front door handed over,
/// or when it closes before that (``AgentSocketServer/handOffBacklog``).
final class FirstAnswer: ChannelOutboundHandler {
    typealias OutboundIn = ByteBuffer

    private var answered: (@Sendable () -> Void)?

    init(_ answered: @escaping @Sendable () -> Void) { self.answered = answered }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        fire()
        context.write(data, promise: promise)
    }

    func handlerRemoved(context: ChannelHandlerContext) { fire() }

    private func fire() {
        answered?()
        answered = nil
    }
}

/// The end of a connection's pipeline until the router is needed. The first request part or
/// error that gets this far (the fast path did not answer it) makes `handOff` wrap the channel
/// for Hummingbird and hand it to the accept loop; from then on everything passes through. A
/// connection that never gets that far closes when its input ends, as Hummingbird would close it.
final class RouterHandoff: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPRequestPart
    typealias InboundOut = HTTPRequestPart

    private let handOff: (any Channel) throws -> Void
    private var handedOff = false

    init(handOff: @escaping (any Channel) throws -> Void) { self.handOff = handOff }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard handOffOnce(context) else { return }
        context.fireChannelRead(data)
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        guard handOffOnce(context) else { return }
        context.fireErrorCaught(error)
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if !handedOff, let event = event as? ChannelEvent, event == .inputClosed {
            // The answers already written go out first.
            context.flush()
            context.close(promise: nil)
            return
        }
        context.fireUserInboundEventTriggered(event)
    }

    /// False: the connection could not be handed off and is closing.
    private func handOffOnce(_ context: ChannelHandlerContext) -> Bool {
        guard !handedOff else { return true }
        handedOff = true
        do {
            try handOff(context.channel)
            return true
        } catch {
            context.close(promise: nil)
            return false
        }
    }
}

/// A connection handed to the router that the accept loop may never see: one handed over after
/// the server stopped is dropped, and an async channel dropped unused traps ("Deinited
/// NIOAsyncWriter without calling finish()"). Dropped unclaimed, it closes its connection instead.
final class RoutedConnection: Sendable {
    private let value: Mutex<(HTTP1Channel, HTTP1Channel.Value)?>

    init(_ http: HTTP1Channel, _ value: HTTP1Channel.Value) { self.value = Mutex((http, value)) }

    /// The connection, once: the accept loop serves it.
    func claim() -> (HTTP1Channel, HTTP1Channel.Value)? { value.withLock { $0.take() } }

    deinit {
        guard let (_, unclaimed) = value.withLock({ $0.take() }) else { return }
        Task { try? await unclaimed.executeThenClose { _, _ in } }
    }
}

/// Answers a refused connection: reads the request head (closing a Unix socket with unread data
/// would reset the peer before it sees the answer), writes `response`, closes.
final class RefusalHandler: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundOut = ByteBuffer

    private let response: String
    private var seen: [UInt8] = []
    private var answered = false
    private var timeout: Scheduled<Void>?

    init(response: String) { self.response = response }

    func handlerAdded(context: ChannelHandlerContext) {
        let channel = context.channel
        timeout = context.eventLoop.scheduleTask(in: .seconds(2)) { channel.close(promise: nil) }
    }

    func handlerRemoved(context: ChannelHandlerContext) { timeout?.cancel() }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard !answered else { return }
        var buffer = unwrapInboundIn(data)
        seen += buffer.readBytes(length: buffer.readableBytes) ?? []
        guard Self.containsHeadEnd(seen) || seen.count > 16 * 1024 else { return }
        answered = true
        let channel = context.channel
        context.writeAndFlush(wrapOutboundOut(ByteBuffer(string: response))).whenComplete { _ in
            channel.close(promise: nil)
        }
    }

    /// True when `bytes` contain CR LF CR LF, the end of an HTTP head.
    private static func containsHeadEnd(_ bytes: [UInt8]) -> Bool {
        guard bytes.count >= 4 else { return false }
        for index in 0...(bytes.count - 4)
        where bytes[index] == 13 && bytes[index + 1] == 10 && bytes[index + 2] == 13 && bytes[index + 3] == 10 {
            return true
        }
        return false
    }
}
