import Crypto
import Foundation
import Hummingbird
import HummingbirdCore
import HummingbirdTLS
import Logging
import NIOCore
import NIOSSL

/// The request context the stand-in needs: a way to drop the connection (for `closeConnection`),
/// and its event loop.
public struct StandInContext: InitializableFromSource {
    let closeConnection: @Sendable () async -> Void
    let eventLoop: any EventLoop

    public init(source: ApplicationRequestContextSource) {
        let channel = source.channel
        closeConnection = { try? await channel.close().get() }
        eventLoop = channel.eventLoop
    }
}

/// Serves the Risk Cloud endpoints rc-agent uses, per shared/reference/risk-cloud-api-facts.md,
/// plus the `/_standin/…` control API (see `rc-standin`'s main.swift for the routes).
struct StandInResponder: HTTPResponder {
    let state: StandInState
    /// `http` or `https`: what the page links it writes start with.
    var scheme = "http"

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
            // Tenants behind a load balancer set a session cookie on API answers.
            var response = try await api(request, context: context, path: path)
            response.headers[.setCookie] = Self.sessionCookie
            return response
        case "/api/v2/uploads":
            return try await upload(request)
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
        await state.countAPIRequest(authorization: request.headers[.authorization])
        if let failure = await state.takeFailure(for: .api),
            let response = try await apply(failure, context: context)
        {
            return response
        }
        let creates = request.method == .post && path == "/api/v2/records"
        guard request.method == .get || creates else {
            return Self.json(.methodNotAllowed, ["status": 405, "message": "Request method '\(request.method)' is not supported"])
        }
        guard case .accepted(let restricted) = await state.checkBearer(authorization: request.headers[.authorization]) else {
            return Response(status: .unauthorized, headers: [.wwwAuthenticate: "Bearer realm=\"Risk Cloud\""])
        }
        if creates { return try await createRecord(request) }
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
        let origin = scheme + "://" + (request.head.authority ?? "127.0.0.1")
        if path == "/api/v2/records", await state.recordPadding > 0 {
            return await paddedRecords(
                page: numbers["page"]!, size: numbers["size"]!, url: origin + path, eventLoop: context.eventLoop)
        }
        let items: [[String: Any]]
        if path == "/api/v2/records" {
            let total = await state.recordCount
            items = (0..<total).map { ["id": "rec\($0 + 1)", "name": "Record \($0 + 1)", "applicationId": "app1"] }
        } else {
            items = [["id": "app1", "name": "Vendor Risk"], ["id": "app2", "name": "Controls"]]
        }
        return Self.json(.ok, Self.page(items, page: numbers["page"]!, size: numbers["size"]!, url: origin + path))
    }

    /// `POST /api/v2/uploads` (bearer required): reads the body as it arrives, any size, and
    /// answers 201 with its length, SHA-256 and content type (also kept in ``StandInState/uploads``).
    private func upload(_ request: Request) async throws -> Response {
        await state.countAPIRequest(authorization: request.headers[.authorization])
        guard request.method == .post else {
            return Self.json(.methodNotAllowed, ["status": 405, "message": "Request method '\(request.method)' is not supported"])
        }
        guard case .accepted = await state.checkBearer(authorization: request.headers[.authorization]) else {
            return Response(status: .unauthorized, headers: [.wwwAuthenticate: "Bearer realm=\"Risk Cloud\""])
        }
        var hash = SHA256()
        var bytes = 0
        for try await chunk in request.body {
            chunk.withUnsafeReadableBytes { hash.update(bufferPointer: $0) }
            bytes += chunk.readableBytes
        }
        let digest = hash.finalize().map { String(format: "%02x", $0) }.joined()
        let upload = StandInUpload(bytes: bytes, sha256: digest, contentType: request.headers[.contentType] ?? "")
        await state.recordUpload(upload)
        return Self.json(.created, ["bytes": bytes, "sha256": digest, "content_type": upload.contentType])
    }

    /// The v2 page shape: `{content[], links{first,prev,self,next,last}, page{size,totalElements,totalPages,number}}`.
    static func page(_ items: [[String: Any]], page: Int, size: Int, url: String) -> [String: Any] {
        let range = Self.range(page: page, size: size, total: items.count)
        var frame = Self.frame(total: items.count, page: page, size: size, url: url)
        frame["content"] = Array(items[range])
        return frame
    }

    /// The indices of `page`'s items among `total`.
    static func range(page: Int, size: Int, total: Int) -> Range<Int> {
        let start = min(total, page.multipliedReportingOverflow(by: size).overflow ? total : page * size)
        return start..<min(total, start + size)
    }

    /// A v2 page's `links` and `page` (no `content`).
    static func frame(total: Int, page: Int, size: Int, url: String) -> [String: Any] {
        let totalPages = (total + size - 1) / size
        func link(_ p: Int) -> Any { "\(url)?page=\(p)&size=\(size)" }
        let last = max(0, totalPages - 1)
        return [
            "links": [
                "first": link(0), "prev": page > 0 ? link(min(page - 1, last)) : NSNull(), "self": link(page),
                "next": page < last ? link(page + 1) : NSNull(), "last": link(last),
            ],
            "page": ["size": size, "totalElements": total, "totalPages": totalPages, "number": page],
        ]
    }

    /// A records page whose records carry ``StandInState/recordPadding`` bytes each, written record
    /// by record as the connection takes them (never whole) and counted in ``StandInState/streamedBodyBytes``.
    /// A record counts once `eventLoop` has handed it to the connection: the body writer returns
    /// before that, and on a busy loop its writes would queue unseen (as the agent's proxy paces
    /// its writes, `EventLoopPacing`).
    private func paddedRecords(page: Int, size: Int, url: String, eventLoop: any EventLoop) async -> Response {
        let total = await state.recordCount
        let padding = String(repeating: "x", count: await state.recordPadding)
        var frame = Self.frame(total: total, page: page, size: size, url: url)
        frame["content"] = [Any]()
        let data = (try? JSONSerialization.data(withJSONObject: frame, options: [.sortedKeys, .withoutEscapingSlashes])) ?? Data()
        // With sorted keys the document starts `{"content":[]`: the records go between the brackets.
        let head = #"{"content":["#
        let tail = String(decoding: data, as: UTF8.self).dropFirst(head.count)
        let range = Self.range(page: page, size: size, total: total)
        let state = self.state
        let body = ResponseBody { writer in
            func send(_ text: String) async throws {
                try await writer.write(ByteBuffer(string: text))
                try await eventLoop.submit {}.get()
                await state.countStreamed(bytes: text.utf8.count)
            }
            try await send(head)
            for index in range {
                try await send(
                    (index == range.lowerBound ? "" : ",")
                        + #"{"applicationId":"app1","id":"rec\#(index + 1)","name":"Record \#(index + 1)","notes":""#
                        + padding + #""}"#)
            }
            try await send(String(tail))
            try await writer.finish(nil)
        }
        return Response(status: .ok, headers: [.contentType: "application/json"], body: body)
    }

    /// `POST /api/v2/records`: a JSON object in; 201 with the object and its new `id` out.
    private func createRecord(_ request: Request) async throws -> Response {
        var request = request
        let body = try await request.collectBody(upTo: 1 << 20)
        guard var record = (try? JSONSerialization.jsonObject(with: Data(buffer: body))) as? [String: Any] else {
            return Self.json(.badRequest, ["property": NSNull(), "value": NSNull(), "message": "Malformed JSON request body"])
        }
        record["id"] = "rec\(await state.addRecord())"
        return Self.json(.created, record)
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

    /// The session cookie every API answer sets.
    public static let sessionCookie = "RCSESSION=standin-session; Path=/; Secure; HttpOnly"

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

/// The stand-in's TLS mode: the certificate chain and key it presents (PEM files), and the host
/// name its base URL uses.
public struct StandInTLS: Sendable {
    public var certificateChainFile: String
    public var privateKeyFile: String
    /// The host of the base URL (`localhost`, or `127.0.0.1`); the stand-in always listens on 127.0.0.1.
    public var host: String

    public init(certificateChainFile: String, privateKeyFile: String, host: String = "localhost") {
        self.certificateChainFile = certificateChainFile
        self.privateKeyFile = privateKeyFile
        self.host = host
    }

    func serverConfiguration() throws -> TLSConfiguration {
        let chain = try NIOSSLCertificate.fromPEMFile(certificateChainFile).map { NIOSSLCertificateSource.certificate($0) }
        let key = try NIOSSLPrivateKey(file: privateKeyFile, format: .pem)
        return TLSConfiguration.makeServerConfiguration(certificateChain: chain, privateKey: .privateKey(key))
    }
}

/// Runs the stand-in on 127.0.0.1:`port` (0: any free port) until the calling task is cancelled,
/// over TLS when `tls` is given. `onBound` receives the port once the server listens.
public func runStandIn(
    state: StandInState, port: Int = 0, tls: StandInTLS? = nil, onBound: @escaping @Sendable (Int) -> Void
) async throws {
    var logger = Logger(label: "rc-standin")
    logger.logLevel = .critical  // a cancelled shutdown logs spurious errors
    let server: HTTPServerBuilder = try tls.map { try .tls(.http1(), tlsConfiguration: $0.serverConfiguration()) } ?? .http1()
    let app = Application(
        responder: StandInResponder(state: state, scheme: tls == nil ? "http" : "https"),
        server: server,
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

/// Starts the stand-in on 127.0.0.1 port 0, runs `body` with its base URL (`http://127.0.0.1:PORT`,
/// or `https://HOST:PORT` with `tls`), then shuts the server down (also when `body` throws).
public func withStandIn<T>(
    _ state: StandInState, tls: StandInTLS? = nil, _ body: (_ baseURL: String) async throws -> T
) async throws -> T {
    try await withThrowingTaskGroup(of: Void.self) { group in
        let (ports, continuation) = AsyncStream<Int>.makeStream()
        group.addTask {
            defer { continuation.finish() }
            try await runStandIn(state: state, port: 0, tls: tls) { continuation.yield($0) }
        }
        var iterator = ports.makeAsyncIterator()
        guard let port = await iterator.next() else {
            try await group.next()
            throw StandInStartError()
        }
        do {
            let result = try await body(tls.map { "https://\($0.host):\(port)" } ?? "http://127.0.0.1:\(port)")
            group.cancelAll()
            return result
        } catch {
            group.cancelAll()
            throw error
        }
    }
}
