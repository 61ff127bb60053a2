import FoundationEssentials
import Hummingbird
import Logging
import RCAgentCore

/// The socket API (PROTOCOL.md): what the routes share, and the router that puts them together.
public struct AgentAPI: Sendable {
    let cache: TokenCache
    let profiles: AgentProfiles
    let store: any CredentialStore
    let clock: any AgentClock
    let socketPath: String
    let startedAt: Date
    let requestShutdown: @Sendable () async -> Void
    let audit: Logger
    /// The tenants' HTTP side for `/v1/proxy/…` (``ProxyRoutes``); nil: the proxy answers 503.
    public var connections: (any TenantConnections)? = nil
    /// Proxied requests in progress per profile at most; more are answered `503` (`proxy_busy`).
    public var maximumProxyStreams = AgentServerLimits().maximumProxyStreamsPerProfile

    /// - Parameter requestShutdown: what `POST /v1/shutdown` does (after its answer is written).
    public init(
        cache: TokenCache, profiles: AgentProfiles, store: any CredentialStore, clock: any AgentClock,
        socketPath: String, requestShutdown: @escaping @Sendable () async -> Void,
        audit: Logger = Logger(label: "rc-agent.audit")
    ) {
        self.cache = cache
        self.profiles = profiles
        self.store = store
        self.clock = clock
        self.socketPath = socketPath
        self.startedAt = clock.now()
        self.requestShutdown = requestShutdown
        self.audit = audit
    }

    /// The router with every route group and the JSON error mapping.
    public func router() -> Router<AgentRequestContext> {
        let router = Router(context: AgentRequestContext.self)
        router.add(middleware: ErrorMiddleware())
        TokenRoutes(api: self).register(on: router)
        StatusRoutes(api: self).register(on: router)
        ProxyRoutes(api: self).register(on: router)
        return router
    }

    /// What `GET /v1/status` answers.
    public func status() async -> AgentStatus {
        await StatusRoutes(api: self).status()
    }
}

/// Building answers: JSON documents and error documents.
enum AgentResponse {
    /// `value` as a JSON answer (one line and a newline).
    static func encoded(_ value: some Encodable, status: HTTPResponse.Status = .ok) throws -> Response {
        var data = try WireJSON.encode(value)
        data.append(UInt8(ascii: "\n"))
        return Response(
            status: status, headers: [.contentType: "application/json"], body: .init(byteBuffer: ByteBuffer(bytes: data)))
    }

    private struct ErrorDocument: Encodable {
        let error: ErrorInfo
    }

    static func errorBody(_ error: any RCAgentError) -> Data {
        let info = ErrorInfo(
            code: error.code.name, message: error.message, hint: error.hint,
            upstreamStatus: (error as? AgentError)?.upstreamStatus ?? (error as? UpstreamFailure)?.upstreamStatus)
        return ((try? WireJSON.encode(ErrorDocument(error: info))) ?? Data()) + Data("\n".utf8)
    }

    /// The JSON error response for `error`, with its code's HTTP status.
    static func error(_ error: any RCAgentError) -> Response {
        var response = Response(
            status: .init(code: error.code.httpStatus), headers: [.contentType: "application/json"],
            body: .init(byteBuffer: ByteBuffer(bytes: errorBody(error))))
        if let retryAfter = (error as? UpstreamFailure)?.retryAfterSeconds, retryAfter > 0 {
            response.headers[.retryAfter] = String(Int(retryAfter.rounded(.up)))
        }
        return response
    }

    /// A complete HTTP/1.1 response as text, for connections refused before HTTP parsing.
    static func raw(status: String, error: AgentError) -> String {
        let body = String(decoding: errorBody(error), as: UTF8.self)
        return "HTTP/1.1 \(status)\r\nContent-Type: application/json\r\nContent-Length: \(body.utf8.count)\r\n"
            + "Connection: close\r\n\r\n" + body
    }
}

/// Turns every error into the JSON error document.
struct ErrorMiddleware: RouterMiddleware {
    typealias Context = AgentRequestContext

    func handle(_ request: Request, context: Context, next: (Request, Context) async throws -> Response) async throws
        -> Response
    {
        do {
            return try await next(request, context)
        } catch let error as any RCAgentError {
            if error.code.httpStatus >= 500 {
                context.logger.warning(
                    "request failed", metadata: ["path": "\(request.uri.path)", "code": "\(error.code)"])
            }
            return AgentResponse.error(error)
        } catch let error as HTTPError where error.status == .notFound {
            return AgentResponse.error(AgentError.notFound("\(request.method) \(request.uri.path)"))
        } catch let error as HTTPError {
            return AgentResponse.error(
                AgentError(
                    ErrorCode.badRequest.answered(with: error.status.code),
                    message: error.body ?? "\(error.status.reasonPhrase)", hint: "see PROTOCOL.md"))
        }
    }
}
