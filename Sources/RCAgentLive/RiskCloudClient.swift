import AsyncHTTPClient
import FoundationEssentials
import NIOCore
import NIOHTTP1
import NIOPosix
import NIOSSL
import RCAgentCore
import RCAgentDaemon
import Synchronization

extension ProxySettings {
    var ahcProxy: HTTPClient.Configuration.Proxy {
        if isSOCKS { return .socksServer(host: host, port: port) }
        let authorization = username.map {
            HTTPClient.Authorization.basic(username: $0, password: password?.reveal() ?? "")
        }
        return .server(host: host, port: port, authorization: authorization)
    }
}

/// The real connection to a tenant: the token endpoint and bearer `GET`s, over AsyncHTTPClient.
///
/// It owns its HTTP clients: call ``shutdown()`` once when done (or use ``withClient(settings:clock:_:)``).
/// Each call makes exactly one attempt (AsyncHTTPClient's connection retries and redirects are
/// off); retries belong to the caller. Every failure is a ``RiskCloudError``.
public struct RiskCloudClient: TokenFetching {
    /// The HTTP clients; a class so copies of the struct share them and one shutdown ends them.
    private final class Transport: Sendable {
        let direct: HTTPClient
        let proxied: HTTPClient?
        let proxy: ProxySettings?

        init(direct: HTTPClient, proxied: HTTPClient?, proxy: ProxySettings?) {
            self.direct = direct
            self.proxied = proxied
            self.proxy = proxy
        }
    }

    public let settings: HTTPSettings
    private let clock: any AgentClock
    private let transport: Transport
    /// The loops the HTTP clients' connections are on (a streamed request body is paced by them).
    private let eventLoops: [any EventLoop]

    /// Creates the HTTP clients. Throws ``RiskCloudError`` (`bad_config`) when the CA bundle or proxy cannot be used.
    /// - Parameters:
    ///   - caContent: the CA bundle's bytes when the caller has read them already (the agent,
    ///     which compares them later); nil: read `settings`' `ca_file` here.
    ///   - eventLoopGroup: where the connections run.
    public init(
        settings: HTTPSettings = HTTPSettings(), clock: any AgentClock = SystemClock(), caContent known: Data? = nil,
        eventLoopGroup: any EventLoopGroup = HTTPClient.defaultEventLoopGroup
    ) throws {
        var tls = TLSConfiguration.makeClientConfiguration()
        // TLS 1.0 and 1.1 are deprecated (RFC 8996); a tenant or proxy offering only those is refused.
        tls.minimumTLSVersion = .tlsv12
        if let caFile = settings.effectiveCAFile {
            // Read once: the roots are these bytes, not whatever the file holds when a connection opens.
            let content = known ?? (try? Data(contentsOf: URL(fileURLWithPath: caFile)))
            let roots = content.map(Self.certificates) ?? []
            guard !roots.isEmpty else {
                throw RiskCloudError(
                    .badSetting(name: "the CA bundle \(caFile)", reason: "it is not a readable PEM certificate file"),
                    tenant: "", path: "")
            }
            tls.additionalTrustRoots = [.certificates(roots)]
        }
        let proxy = try ProxySettings.from(environment: settings.environment)
        func makeClient(proxy: ProxySettings?) -> HTTPClient {
            var pool = HTTPClient.Configuration.ConnectionPool()
            pool.retryConnectionEstablishment = false
            pool.concurrentHTTP1ConnectionsPerHostSoftLimit = max(1, settings.maximumConnectionsPerHost)
            var configuration = HTTPClient.Configuration(
                tlsConfiguration: tls, redirectConfiguration: .disallow,
                timeout: .init(connect: Self.amount(settings.connectTimeout), read: Self.amount(settings.readTimeout)),
                connectionPool: pool, proxy: proxy?.ahcProxy)
            configuration.httpVersion = .http1Only
            return HTTPClient(eventLoopGroup: eventLoopGroup, configuration: configuration)
        }
        self.settings = settings
        self.eventLoops = Array(eventLoopGroup.makeIterator())
        self.clock = clock
        self.transport = Transport(
            direct: makeClient(proxy: nil), proxied: proxy.map { makeClient(proxy: $0) }, proxy: proxy)
    }

    /// The certificates of a PEM bundle (none when it holds none or does not parse). The last
    /// bundle's are kept: the agent builds a token and a proxy client for each profile from the
    /// same bytes, and a system bundle (`SSL_CERT_FILE`) is some 140 certificates, 0.8 MB parsed.
    private static func certificates(_ content: Data) -> [NIOSSLCertificate] {
        if let roots = lastRoots.withLock({ $0?.content == content ? $0?.roots : nil }) { return roots }
        let roots = (try? NIOSSLCertificate.fromPEMBytes(Array(content))) ?? []
        lastRoots.withLock { $0 = (content, roots) }
        return roots
    }

    private static let lastRoots = Mutex<(content: Data, roots: [NIOSSLCertificate])?>(nil)

    /// Shuts the HTTP clients down. Call exactly once, after the last request.
    public func shutdown() async throws {
        try await transport.direct.shutdown()
        try await transport.proxied?.shutdown()
    }

    /// Runs `body` with a new client and shuts it down afterwards, also when `body` throws.
    public static func withClient<T>(
        settings: HTTPSettings = HTTPSettings(), clock: any AgentClock = SystemClock(),
        _ body: (RiskCloudClient) async throws -> T
    ) async throws -> T {
        let client = try RiskCloudClient(settings: settings, clock: clock)
        let result: T
        do {
            result = try await body(client)
        } catch {
            try? await client.shutdown()
            throw error
        }
        try await client.shutdown()
        return result
    }

    // MARK: - Token endpoint

    /// `POST {tenant}/api/v1/account/token` with `Authorization: Basic base64(id:secret)`.
    ///
    /// The expiry is the time the request was sent plus `expires_in`. Throws ``UsageError`` for a
    /// Client ID that cannot be sent, ``RiskCloudError`` for everything the tenant or network does.
    public func fetchToken(tenant: TenantURL, clientID: String, secret: Secret) async throws -> AccessToken {
        try CredentialInput.validateClientID(clientID)
        let path = "/api/v1/account/token"
        let authorization = BasicAuth.header(clientID: clientID, secret: secret)
        var request = HTTPClientRequest(url: tenant.url(path: path))
        request.method = .POST
        request.headers.add(name: "Authorization", value: authorization.reveal())
        request.headers.add(name: "Accept", value: "application/json")
        request.headers.add(name: "User-Agent", value: RCAgentVersion.userAgent)
        let redacting = [secret.reveal(), authorization.reveal(), String(authorization.reveal().dropFirst(6))]

        let sentAt = clock.now()
        let response = try await send(request, tenant: tenant, path: path, maxBodyBytes: 64 * 1024, redacting: redacting)
        if let error = RiskCloudError.forResponse(
            status: response.status, headers: response.headers, body: response.body, tenant: tenant, path: path,
            endpoint: .token, now: clock.now(), redacting: redacting)
        {
            throw error
        }
        return try AccessToken(tokenAnswer: response, sentAt: sentAt, tenant: tenant, path: path, redacting: redacting)
    }

    // MARK: - Bearer calls

    /// `GET {tenant}{path}` with `Authorization: Bearer TOKEN`; `path` may carry a query.
    ///
    /// Returns the answer whatever its status (diagnose it with ``RiskCloudError/forResponse(status:headers:body:tenant:path:endpoint:now:redacting:)``);
    /// throws ``RiskCloudError`` only when there is no complete answer (network, TLS, timeout, body over `maxBodyBytes`).
    public func get(tenant: TenantURL, path: String, token: Secret, maxBodyBytes: Int = 8 << 20) async throws
        -> UpstreamResponse
    {
        try await send(method: "GET", tenant: tenant, path: path, token: token, maxBodyBytes: maxBodyBytes)
    }


    /// `METHOD {tenant}{path}` with `Authorization: Bearer TOKEN` (no `Authorization` when `token`
    /// is nil); `path` may carry a query.
    ///
    /// `headers` replace the defaults (`Accept: application/json`, `User-Agent`, and
    /// `Content-Type: application/json` when there is a body); any of ``TenantRequest/reservedHeaders`` in
    /// them is dropped, so a caller's `Authorization` never reaches the tenant. Returns the answer
    /// whatever its status; throws ``RiskCloudError`` only when there is no complete answer.
    public func send(
        method: String, tenant: TenantURL, path: String, headers: [(name: String, value: String)] = [],
        body: [UInt8]? = nil, token: Secret?, maxBodyBytes: Int = 8 << 20
    ) async throws -> UpstreamResponse {
        let request = Self.request(method: method, tenant: tenant, path: path, headers: headers, body: body, token: token)
        return try await send(
            request, tenant: tenant, path: TenantRequest.pathWithoutQuery(path), maxBodyBytes: maxBodyBytes,
            redacting: token.map { [$0.reveal()] } ?? [])
    }

    /// ``send(method:tenant:path:headers:body:token:maxBodyBytes:)`` without collecting the body:
    /// returns once the status and headers have arrived, with the body still streaming (the
    /// agent's proxy passes it on as it comes). Throws ``RiskCloudError`` when no answer arrives.
    ///
    /// Time limits: connecting ``HTTPSettings/connectTimeout``, the head within
    /// ``HTTPSettings/requestTimeout``, and then no more than ``HTTPSettings/readTimeout`` of
    /// silence while the body arrives (errors from the body are AsyncHTTPClient's own).
    public func stream(
        method: String, tenant: TenantURL, path: String, headers: [(name: String, value: String)] = [],
        body: TenantRequestBody? = nil, token: Secret?
    ) async throws -> StreamingUpstreamResponse {
        var request = Self.request(method: method, tenant: tenant, path: path, headers: [], body: nil, token: nil)
        switch body {
        case nil: break
        case .bytes(let bytes): request.body = .bytes(ByteBuffer(bytes: bytes))
        case .stream(let chunks, let length):
            let declared: HTTPClientRequest.Body.Length = length.map { .known(Int64($0)) } ?? .unknown
            request.body = .stream(PacedBody(chunks: chunks, pacing: EventLoopPacing(eventLoops: eventLoops)), length: declared)
        }
        if body != nil { request.headers.add(name: "Content-Type", value: "application/json") }
        Self.add(headers: headers, token: token, to: &request)
        let response = try await execute(request, tenant: tenant, path: TenantRequest.pathWithoutQuery(path))
        return StreamingUpstreamResponse(
            status: Int(response.status.code), headers: response.headers.map { (name: $0.name, value: $0.value) },
            body: response.body)
    }

    /// The request `send` and `stream` make: defaults, the caller's headers (minus the reserved
    /// ones), then the bearer token.
    private static func request(
        method: String, tenant: TenantURL, path: String, headers: [(name: String, value: String)], body: [UInt8]?,
        token: Secret?
    ) -> HTTPClientRequest {
        var request = HTTPClientRequest(url: tenant.url(path: path))
        request.method = HTTPMethod(rawValue: method.uppercased())
        request.headers.add(name: "Accept", value: "application/json")
        request.headers.add(name: "User-Agent", value: RCAgentVersion.userAgent)
        if let body {
            request.headers.add(name: "Content-Type", value: "application/json")
            request.body = .bytes(ByteBuffer(bytes: body))
        }
        add(headers: headers, token: token, to: &request)
        return request
    }

    /// The caller's headers (minus the reserved ones), then the bearer token.
    private static func add(headers: [(name: String, value: String)], token: Secret?, to request: inout HTTPClientRequest) {
        for header in headers where !TenantRequest.reservedHeaders.contains(header.name.lowercased()) {
            request.headers.replaceOrAdd(name: header.name, value: header.value)
        }
        if let token { request.headers.replaceOrAdd(name: "Authorization", value: "Bearer " + token.reveal()) }
    }

    /// `path` without its query: what diagnoses and logs name.

    // MARK: - Transport

    private func send(
        _ request: HTTPClientRequest, tenant: TenantURL, path: String, maxBodyBytes: Int, redacting: [String]
    ) async throws -> UpstreamResponse {
        let response = try await execute(request, tenant: tenant, path: path)
        let status = Int(response.status.code)
        do {
            let body = try await response.body.collect(upTo: maxBodyBytes)
            return UpstreamResponse(
                status: status, headers: response.headers.map { (name: $0.name, value: $0.value) },
                body: Array(buffer: body))
        } catch is NIOTooManyBytesError {
            throw RiskCloudError(
                .unexpectedResponse(status: status, excerpt: "the body is larger than \(maxBodyBytes) bytes"),
                tenant: tenant.base, path: path)
        } catch {
            throw try classify(error, tenant: tenant, path: path)
        }
    }

    /// Sends `request` (through `HTTPS_PROXY` unless the tenant bypasses it) and waits for the head.
    private func execute(_ request: HTTPClientRequest, tenant: TenantURL, path: String) async throws
        -> HTTPClientResponse
    {
        let client = transport.proxy.map { $0.bypasses(host: tenant.host) } == false
            ? (transport.proxied ?? transport.direct) : transport.direct
        do {
            return try await client.execute(request, timeout: Self.amount(settings.requestTimeout))
        } catch {
            throw try classify(error, tenant: tenant, path: path)
        }
    }

    /// Maps a transport error to a ``RiskCloudError``; rethrows cancellation as `CancellationError`.
    func classify(_ error: any Error, tenant: TenantURL, path: String) throws -> RiskCloudError {
        func make(_ kind: RiskCloudError.Kind) -> RiskCloudError {
            RiskCloudError(kind, tenant: tenant.base, path: path)
        }
        let port = tenant.port ?? (tenant.scheme == "https" ? 443 : 80)
        switch error {
        case let error as RiskCloudError:
            return error
        case let error as HTTPClientError:
            switch error {
            case .cancelled: throw CancellationError()
            case .connectTimeout, .tlsHandshakeTimeout, .httpProxyHandshakeTimeout, .socksHandshakeTimeout:
                return make(.timeout(phase: .connect, seconds: settings.connectTimeout))
            case .readTimeout: return make(.timeout(phase: .read, seconds: settings.readTimeout))
            case .deadlineExceeded: return make(.timeout(phase: .request, seconds: settings.requestTimeout))
            case .remoteConnectionClosed: return make(.connectionClosed)
            case .proxyAuthenticationRequired:
                return make(.network(detail: "the proxy requires authentication (407); check HTTPS_PROXY"))
            case .invalidProxyResponse:
                return make(.network(detail: "the proxy refused to connect to the tenant; check HTTPS_PROXY"))
            default:
                return make(.network(detail: ResponseExcerpt.clean(String(describing: error))))
            }
        case let error as NIOConnectionError:
            if error.connectionErrors.isEmpty, error.dnsAError != nil || error.dnsAAAAError != nil {
                return make(.dnsFailure(host: error.host))
            }
            if error.connectionErrors.contains(where: { ($0.error as? IOError)?.errnoCode == ECONNREFUSED }) {
                return make(.connectionRefused(host: error.host, port: error.port))
            }
            return make(.network(detail: ResponseExcerpt.clean(String(describing: error))))
        case let error as IOError where error.errnoCode == ECONNREFUSED:
            return make(.connectionRefused(host: tenant.host, port: port))
        case let error as IOError where [ECONNRESET, EPIPE].contains(error.errnoCode):
            return make(.connectionClosed)
        case is SocketAddressError:
            return make(.dnsFailure(host: tenant.host))
        case let error as ChannelError where error == .connectTimeout(.zero) || "\(error)".contains("connectTimeout"):
            return make(.timeout(phase: .connect, seconds: settings.connectTimeout))
        case let error as NIOSSLExtraError where error == .failedToValidateHostname:
            return make(.tls(.wrongHost, detail: ResponseExcerpt.clean(String(describing: error))))
        case let error as NIOSSLError:
            let detail = ResponseExcerpt.clean(String(describing: error))
            switch error {
            case .uncleanShutdown: return make(.connectionClosed)
            case .handshakeFailed where detail.contains("CERTIFICATE_VERIFY_FAILED"):
                return make(.tls(.untrusted, detail: detail))
            case .failedToLoadCertificate, .failedToLoadPrivateKey:
                return make(.badSetting(name: "the CA bundle", reason: detail))
            default:
                return make(.tls(.handshake, detail: detail))
            }
        case is CancellationError:
            throw error
        default:
            return make(.network(detail: ResponseExcerpt.clean(String(describing: error))))
        }
    }

    static func amount(_ seconds: Double) -> TimeAmount {
        .milliseconds(Int64(max(0.001, seconds) * 1000))
    }
}

extension RiskCloudClient: TenantRequesting, TenantStreaming {}

/// A streamed request body that AsyncHTTPClient reads no faster than its connection's event loop
/// writes it (``EventLoopPacing``, on every loop the connection may be on): its body writer does
/// not wait for a write while it believes the connection writable, so a busy loop would let it
/// take a whole upload from the caller into memory.
private struct PacedBody: AsyncSequence, Sendable {
    typealias Element = ByteBuffer

    let chunks: any AsyncSequence<ByteBuffer, any Error> & Sendable
    let pacing: EventLoopPacing

    func makeAsyncIterator() -> Iterator { Iterator(chunks: chunks.makeAsyncIterator(), pacing: pacing) }

    struct Iterator: AsyncIteratorProtocol {
        var chunks: any AsyncIteratorProtocol<ByteBuffer, any Error>
        var pacing: EventLoopPacing
        /// The chunk returned last, which AsyncHTTPClient has handed to the loop when it asks for the next.
        var handed = 0

        mutating func next() async throws -> ByteBuffer? {
            try await pacing.wrote(handed)
            let chunk = try await chunks.next()
            handed = chunk?.readableBytes ?? 0
            return chunk
        }
    }
}
