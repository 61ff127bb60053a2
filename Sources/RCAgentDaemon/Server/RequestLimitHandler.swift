import HTTPTypes
import NIOCore
import NIOHTTP1
import NIOHTTPTypes
import RCAgentCore

/// The limits of one connection, between the HTTP codec and Hummingbird:
/// - a client must deliver a request head within the request timeout of connecting or of the
///   previous response, and then keep its body coming (each part re-arms the timer): else the
///   connection is closed (slow-loris and idle keep-alive alike);
/// - a body over its limit (``AgentServerLimits/maximumBodyBytes``, or
///   ``AgentServerLimits/maximumProxyBodyBytes`` under `/v1/proxy/`) is answered `413`, headers over
///   theirs `431`, with the JSON error document and `Connection: close`; what the client still
///   sends is read and dropped for a moment before the connection closes, so the client sees the
///   answer instead of a reset;
/// - `Expect: 100-continue`: `100 Continue` goes out when a route calls
///   ``AgentRequestContext/acceptBody()`` (the agent's own endpoints: at once); a final answer
///   before it closes the connection after the answer, the body never read.
final class RequestLimitHandler: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPRequestPart
    typealias InboundOut = HTTPRequestPart
    typealias OutboundIn = HTTPResponsePart
    typealias OutboundOut = HTTPResponsePart

    /// The outbound user event ``AgentRequestContext/acceptBody()`` sends.
    struct AcceptBody: Sendable {}

    /// Longest wait for more of a refused request's bytes before closing, and the longest linger.
    static let lingerIdle: TimeAmount = .seconds(2)
    static let lingerTotal: TimeAmount = .seconds(30)

    private let limits: AgentServerLimits
    /// When the connection is closed unless re-armed; nil: disarmed (a request is complete and
    /// its answer under way).
    private var deadline: NIODeadline?
    /// The one timer, set for `timerDeadline`; re-armings that move the deadline later leave it
    /// in place (it re-schedules itself when it fires early), so a keep-alive request costs a
    /// clock read instead of a cancel and a schedule.
    private var timer: Scheduled<Void>?
    private var timerDeadline: NIODeadline?
    /// Body limit of the request being read.
    private var bodyLimit = 0
    private var bodyBytes = 0
    /// The client sent `Expect: 100-continue` and has had neither `100 Continue` nor a final answer.
    private var awaitingContinue = false
    private var requestComplete = true
    private var responseStarted = false
    /// The connection is being closed after an answer: input is read and dropped, output dropped.
    private var closing = false
    private var lingerStarted: NIODeadline?

    init(limits: AgentServerLimits) { self.limits = limits }

    func handlerAdded(context: ChannelHandlerContext) { arm(context, after: limits.requestTimeout) }

    func handlerRemoved(context: ChannelHandlerContext) {
        timer?.cancel()
        timer = nil
        deadline = nil
    }

    // MARK: Inbound

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard !closing else {
            arm(context, after: Self.lingerIdle)
            return
        }
        switch unwrapInboundIn(data) {
        case .head(let head):
            bodyBytes = 0
            requestComplete = false
            responseStarted = false
            let proxied = (head.path ?? "").hasPrefix(ProxyTarget.prefix)
            bodyLimit = proxied ? limits.maximumProxyBodyBytes : limits.maximumBodyBytes
            if let length = head.headerFields[.contentLength].flatMap(Int.init), length > bodyLimit {
                refuse(context, Self.bodyTooLarge(bodyLimit, proxied: proxied))
                return
            }
            awaitingContinue = head.headerFields[.expect]?.lowercased() == "100-continue"
            if awaitingContinue && !proxied { sendContinue(context) }
            arm(context, after: limits.requestTimeout)
        case .body(let buffer):
            awaitingContinue = false
            bodyBytes += buffer.readableBytes
            guard bodyBytes <= bodyLimit else {
                let error = Self.bodyTooLarge(bodyLimit, proxied: bodyLimit == limits.maximumProxyBodyBytes)
                refuse(context, error)
                // Whoever reads the body (the proxy's upload) fails instead of seeing it end early.
                context.fireErrorCaught(error)
                return
            }
            arm(context, after: limits.requestTimeout)
        case .end:
            requestComplete = true
            awaitingContinue = false
            deadline = nil
        }
        context.fireChannelRead(data)
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        if closing { context.read() } else { context.fireChannelReadComplete() }
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        guard !closing else { return }
        if case .headerOverflow? = error as? HTTPParserError {
            refuse(
                context,
                AgentError(
                    .headersTooLarge,
                    message: "the request headers are larger than \(limits.maximumHeaderBytes) bytes "
                        + "or more than \(limits.maximumHeaderCount) fields",
                    hint: "send fewer or shorter headers"))
            return
        }
        context.fireErrorCaught(error)
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if closing, let event = event as? ChannelEvent, event == .inputClosed {
            context.close(promise: nil)
            return
        }
        context.fireUserInboundEventTriggered(event)
    }

    // MARK: Outbound

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        guard !closing else {
            promise?.succeed()
            return
        }
        switch unwrapOutboundIn(data) {
        case .head(var head) where head.status.kind != .informational:
            responseStarted = true
            if awaitingContinue && !requestComplete {
                // A final answer before the body: the client may or may not send it now, so the
                // connection cannot carry another request.
                head.headerFields[.connection] = "close"
                context.write(wrapOutboundOut(.head(head)), promise: promise)
                return
            }
        case .end:
            if awaitingContinue && !requestComplete {
                context.writeAndFlush(data, promise: promise)
                linger(context)
                return
            }
            arm(context, after: limits.requestTimeout)
        default:
            break
        }
        context.write(data, promise: promise)
    }

    func triggerUserOutboundEvent(context: ChannelHandlerContext, event: Any, promise: EventLoopPromise<Void>?) {
        guard event is AcceptBody else {
            context.triggerUserOutboundEvent(event, promise: promise)
            return
        }
        if awaitingContinue && !closing { sendContinue(context) }
        promise?.succeed()
    }

    func close(context: ChannelHandlerContext, mode: CloseMode, promise: EventLoopPromise<Void>?) {
        // Hummingbird closes as soon as its request fails; the answer already written goes first
        // and the linger ends the connection.
        if closing {
            if let promise { context.channel.closeFuture.cascade(to: promise) }
            return
        }
        context.close(mode: mode, promise: promise)
    }

    // MARK: Helpers

    private static func bodyTooLarge(_ limit: Int, proxied: Bool) -> AgentError {
        AgentError(
            .requestTooLarge,
            message: "the request body is larger than \(limit) bytes, the agent's limit for "
                + (proxied ? "proxied requests (proxy_max_body)" : "its own endpoints"),
            hint: proxied
                ? "send a smaller body, or raise proxy_max_body in the config's [defaults] and restart the agent"
                : "the agent's own endpoints take at most \(limit) bytes of body")
    }

    private func sendContinue(_ context: ChannelHandlerContext) {
        awaitingContinue = false
        context.writeAndFlush(wrapOutboundOut(.head(HTTPResponse(status: .continue))), promise: nil)
    }

    /// Answers `error` (unless an answer is already under way: then only closes) and lingers.
    private func refuse(_ context: ChannelHandlerContext, _ error: AgentError) {
        if !responseStarted {
            let body = AgentResponse.errorBody(error)
            var head = HTTPResponse(status: .init(code: error.code.httpStatus))
            head.headerFields[.contentType] = "application/json"
            head.headerFields[.contentLength] = String(body.count)
            head.headerFields[.connection] = "close"
            context.write(wrapOutboundOut(.head(head)), promise: nil)
            context.write(wrapOutboundOut(.body(ByteBuffer(bytes: body))), promise: nil)
            context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: nil)
        }
        linger(context)
    }

    /// From now on: input read and dropped until the client closes its side, goes quiet for
    /// ``lingerIdle`` or ``lingerTotal`` has passed; then the connection closes.
    private func linger(_ context: ChannelHandlerContext) {
        closing = true
        lingerStarted = .now()
        arm(context, after: Self.lingerIdle)
        context.read()
    }

    private func arm(_ context: ChannelHandlerContext, after timeout: TimeAmount) {
        let now = NIODeadline.now()
        var wait = timeout
        if let lingerStarted {
            let left = lingerStarted + Self.lingerTotal - now
            wait = min(wait, max(left, .zero))
        }
        deadline = now + wait
        schedule(context)
    }

    /// Makes sure the timer fires no later than `deadline`.
    private func schedule(_ context: ChannelHandlerContext) {
        guard let deadline else { return }
        if timer != nil, let timerDeadline, timerDeadline <= deadline { return }
        timer?.cancel()
        timerDeadline = deadline
        let bound = NIOLoopBound((self, context), eventLoop: context.eventLoop)
        timer = context.eventLoop.scheduleTask(deadline: deadline) {
            let (handler, context) = bound.value
            handler.timer = nil
            handler.timerDeadline = nil
            guard let deadline = handler.deadline else { return }
            if deadline <= .now() {
                context.close(promise: nil)
            } else {
                handler.schedule(context)
            }
        }
    }
}
