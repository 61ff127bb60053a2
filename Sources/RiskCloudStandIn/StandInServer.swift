import Foundation
import Hummingbird
import Logging

/// The request context the stand-in needs: a way to drop the connection (for `closeConnection`).
public struct StandInContext: InitializableFromSource {
    let closeConnection: @Sendable () async -> Void

    public init(source: ApplicationRequestContextSource) {
        let channel = source.channel
        closeConnection = { try? await channel.close().get() }
    }
}

/// Serves the Risk Cloud endpoints rc-agent uses, per shared/reference/risk-cloud-api-facts.md,
/// plus the `/_standin/…` control API (see `rc-standin`'s main.swift for the routes).
struct StandInResponder: HTTPResponder {
    let state: StandInState

    func respond(to request: Request, context: StandInContext) async throws -> Response {
        let path = request.uri.path
        if path.hasPrefix("/_standin/") {
            var request = request
            let body = try await request.collectBody(upTo: 64 * 1024)
            return await ControlAPI(state: state).respond(
                method: request.method, path: path, body: Data(buffer: body))
        }
        switch path {
        case "/api/v1/account/token":
            return try await token(request, context: context)
        case "/api/v2/records", "/api/v2/applications":
            return try await api(request, context: context, path: path)
        default:
            return Self.json(.notFound, ["status": 404, "message": "No handler found for \(request.method) \(path)"])
        }
    }

    private func token(_ request: Request, context: StandInContext) async throws -> Response {
        let authorization = request.headers[.authorization]
        await state.countTokenRequest(authorization: authorization)
        if let failure = await state.takeFailure(for: .token),
            let response = try await apply(failure, context: context)
        {
            return response
        }
        guard request.method == .post else {
            return Self.json(.methodNotAllowed, ["status": 405, "message": "Request method '\(request.method)' is not supported"])
        }
        var request = request
        let body = try await request.collectBody(upTo: 64 * 1024)
        // Public clients send no body or `{}`; anything that is not JSON is a malformed request.
        if body.readableBytes > 0,
            (try? JSONSerialization.jsonObject(with: Data(buffer: body), options: [.fragmentsAllowed])) == nil
        {
            return Self.json(.badRequest, ["property": NSNull(), "value": NSNull(), "message": "Malformed JSON request body"])
        }
        switch await state.issueToken(authorization: authorization) {
        case .rejected:
            // The spec defines no 401 body: the tenant sends an empty one.
            return Response(status: .unauthorized, headers: [.wwwAuthenticate: "Basic realm=\"Risk Cloud\""])
        case .issued(let token, let expiresIn):
            return Self.json(.ok, [
                "access_token": token, "token_type": "bearer", "expires_in": expiresIn, "scope": "read write",
            ])
        }
    }

    private func api(_ request: Request, context: StandInContext, path: String) async throws -> Response {
        await state.countAPIRequest()
        if let failure = await state.takeFailure(for: .api),
            let response = try await apply(failure, context: context)
        {
            return response
        }
        guard request.method == .get else {
            return Self.json(.methodNotAllowed, ["status": 405, "message": "Request method '\(request.method)' is not supported"])
        }
        guard case .accepted(let restricted) = await state.checkBearer(authorization: request.headers[.authorization]) else {
            return Response(status: .unauthorized, headers: [.wwwAuthenticate: "Bearer realm=\"Risk Cloud\""])
        }
        let query = request.uri.queryParameters
        var numbers: [String: Int] = ["page": 0, "size": 20]
        for (name, range) in [("page", 0...Int.max), ("size", 1...1000)] {
            guard let raw = query[Substring(name)] else { continue }
            guard let value = Int(raw), range.contains(value) else {
                return Self.json(.badRequest, [
                    "property": name, "value": String(raw),
                    "message": name == "page"
                        ? "page must be a non-negative integer" : "size must be an integer between 1 and 1000",
                ])
            }
            numbers[name] = value
        }
        if path == "/api/v2/applications", restricted {
            return Self.json(.forbidden, ["property": NSNull(), "value": NSNull(), "message": "Access is denied"])
        }
        let items: [[String: Any]]
        if path == "/api/v2/records" {
            let total = await state.recordCount
            items = (0..<total).map { ["id": "rec\($0 + 1)", "name": "Record \($0 + 1)", "applicationId": "app1"] }
        } else {
            items = [["id": "app1", "name": "Vendor Risk"], ["id": "app2", "name": "Controls"]]
        }
        let origin = "http://" + (request.head.authority ?? "127.0.0.1")
        return Self.json(.ok, Self.page(items, page: numbers["page"]!, size: numbers["size"]!, url: origin + path))
    }

    /// The v2 page shape: `{content[], links{first,prev,self,next,last}, page{size,totalElements,totalPages,number}}`.
    static func page(_ items: [[String: Any]], page: Int, size: Int, url: String) -> [String: Any] {
        let totalPages = (items.count + size - 1) / size
        let start = min(items.count, page.multipliedReportingOverflow(by: size).overflow ? items.count : page * size)
        let content = Array(items[start..<min(items.count, start + size)])
        func link(_ p: Int) -> Any { "\(url)?page=\(p)&size=\(size)" }
        let last = max(0, totalPages - 1)
        return [
            "content": content,
            "links": [
                "first": link(0), "prev": page > 0 ? link(min(page - 1, last)) : NSNull(), "self": link(page),
                "next": page < last ? link(page + 1) : NSNull(), "last": link(last),
            ],
            "page": ["size": size, "totalElements": items.count, "totalPages": totalPages, "number": page],
        ]
    }

    /// Applies an injected failure; nil means "carry on with the normal answer" (after a delay).
    private func apply(_ failure: StandInFailure, context: StandInContext) async throws -> Response? {
        switch failure {
        case .status(let code, let body):
            var headers: HTTPFields = [:]
            if let body, body.first == "{" || body.first == "[" { headers[.contentType] = "application/json" }
            return Response(
                status: .init(code: code), headers: headers,
                body: .init(byteBuffer: ByteBuffer(string: body ?? "")))
        case .retryAfter(let seconds):
            return Self.json(
                .tooManyRequests, ["status": 429, "message": "Too Many Requests"],
                extra: [.retryAfter: String(seconds)])
        case .delay(let seconds):
            try await Task.sleep(nanoseconds: UInt64(max(0, seconds) * 1_000_000_000))
            return nil
        case .garbage:
            return Response(
                status: .ok, headers: [.contentType: "text/html"],
                body: .init(byteBuffer: ByteBuffer(string: Self.maintenancePage)))
        case .closeConnection:
            await context.closeConnection()
            return Response(status: .internalServerError)
        case .hang:
            // Ends when the server shuts down (its tasks are cancelled).
            while true { try await Task.sleep(nanoseconds: 3_600_000_000_000) }
        }
    }

    static let maintenancePage = """
        <!DOCTYPE html><html><head><title>Risk Cloud - Scheduled Maintenance</title></head>
        <body><h1>We'll be back soon</h1><p>Risk Cloud is undergoing scheduled maintenance.</p></body></html>
        """

    static func json(_ status: HTTPResponse.Status, _ object: Any, extra: HTTPFields = [:]) -> Response {
        let data = (try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys, .withoutEscapingSlashes])) ?? Data("{}".utf8)
        var headers: HTTPFields = [.contentType: "application/json"]
        headers.append(contentsOf: extra)
        return Response(status: status, headers: headers, body: .init(byteBuffer: ByteBuffer(bytes: data)))
    }
}

/// Runs the stand-in on 127.0.0.1:`port` (0: any free port) until the calling task is cancelled.
/// `onBound` receives the port once the server listens.
public func runStandIn(state: StandInState, port: Int = 0, onBound: @escaping @Sendable (Int) -> Void) async throws {
    var logger = Logger(label: "rc-standin")
    logger.logLevel = .critical  // a cancelled shutdown logs spurious errors
    let app = Application(
        responder: StandInResponder(state: state),
        configuration: .init(address: .hostname("127.0.0.1", port: port)),
        onServerRunning: { channel in onBound(channel.localAddress?.port ?? port) },
        logger: logger
    )
    try await app.run()
}

/// The stand-in could not start.
public struct StandInStartError: Error, CustomStringConvertible {
    public var description: String { "the stand-in stopped before it was listening" }
}

/// Starts the stand-in on 127.0.0.1 port 0, runs `body` with its base URL (`http://127.0.0.1:PORT`),
/// then shuts the server down (also when `body` throws).
public func withStandIn<T>(
    _ state: StandInState, _ body: (_ baseURL: String) async throws -> T
) async throws -> T {
    try await withThrowingTaskGroup(of: Void.self) { group in
        let (ports, continuation) = AsyncStream<Int>.makeStream()
        group.addTask {
            defer { continuation.finish() }
            try await runStandIn(state: state, port: 0) { continuation.yield($0) }
        }
        var iterator = ports.makeAsyncIterator()
        guard let port = await iterator.next() else {
            try await group.next()
            throw StandInStartError()
        }
        do {
            let result = try await body("http://127.0.0.1:\(port)")
            group.cancelAll()
            return result
        } catch {
            group.cancelAll()
            throw error
        }
    }
}
