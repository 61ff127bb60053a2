import FoundationEssentials
import RCAgentCore
import Hummingbird
import Logging
import NIOCore

/// The agent's own token cache as a token source: the proxy asks it directly, not over the socket.
struct CachedTokenSource: AgentTokenSource {
    let cache: TokenCache
    let clock: any AgentClock

    func token(profile: String, minValid: Int?) async throws -> TokenResponse {
        TokenResponse(try await cache.token(profile: profile, minValid: Double(minValid ?? 60)), now: clock.now())
    }

    func refresh(profile: String) async throws -> TokenResponse {
        TokenResponse(try await cache.refresh(profile: profile), now: clock.now())
    }
}

/// `ANY /v1/proxy/PROFILE/api/…?query`: forwards the request to the profile's tenant with the
/// agent's bearer token, and streams the answer back (PROTOCOL.md, "Proxy").
///
/// The caller's `Authorization`, `Host` and hop-by-hop headers are dropped; the answer keeps its
/// status, headers (minus hop-by-hop and `Set-Cookie`) and body, and a non-2xx one gets `X-RC-Agent-Diagnosis`
/// with ``RiskCloudError``'s code. A 401 makes the agent fetch a new token once and send the
/// request again when its body is small enough to keep (``retryableBodyBytes``); a larger body
/// is streamed to the tenant as it arrives (up to `proxy_max_body`, which the server enforces)
/// and sent once.
///
/// At most ``AgentAPI/maximumProxyStreams`` requests of a profile are in progress (until their
/// answer's body is passed on); one more is answered `503` (`proxy_busy`). Token requests use a
/// client of their own and are never held up by proxied ones.
struct ProxyRoutes: Sendable {
    typealias Field = HTTPFields.Element

    static let diagnosisHeader = Field.Name("X-RC-Agent-Diagnosis")!
    static let methods: [HTTPRequest.Method] = [.get, .head, .post, .put, .patch, .delete, .options]
    /// Headers that belong to one connection (RFC 9110 §7.6.1), never forwarded either way.
    static let hopByHopHeaders: Set<String> = [
        "connection", "keep-alive", "proxy-authenticate", "proxy-authorization", "proxy-connection", "te", "trailer",
        "transfer-encoding", "upgrade", "expect",
    ]
    /// Answer headers never passed to the caller: a session cookie is a credential of the agent's.
    static let droppedAnswerHeaders: Set<String> = ["set-cookie", "set-cookie2"]
    /// Most bytes of a refused (401) answer read before the retry, so its connection can be reused.
    static let discardedBodyBytes = 64 * 1024

    let cache: TokenCache
    let profiles: AgentProfiles
    let clock: any AgentClock
    let audit: Logger
    let connections: (any TenantConnections)?
    let streams: ProxyStreams
    /// Largest request body kept in memory so that a 401 can be retried with a fresh token.
    static let retryableBodyBytes = 16 * 1024

    init(api: AgentAPI) {
        cache = api.cache
        profiles = api.profiles
        clock = api.clock
        audit = api.audit
        connections = api.connections
        streams = ProxyStreams(limit: api.maximumProxyStreams)
    }

    /// Adds `/v1/proxy/**` for every method the proxy forwards.
    func register(on router: Router<AgentRequestContext>) {
        for method in Self.methods {
            router.on("/v1/proxy/**", method: method) { request, context in
                try await self.respond(to: request, context: context)
            }
        }
    }

    func respond(to request: Request, context: AgentRequestContext) async throws -> Response {
        var request = request
        var logged: Logger.Metadata = ["method": "\(request.method.rawValue)", "path": "\(request.uri.path)"]
        do {
            let target = try ProxyTarget(path: request.uri.path, query: request.uri.query)
            logged["profile"] = "\(target.profile)"
            logged["path"] = "\(target.path)"
            guard profiles.contains(target.profile) else { throw AgentError.unknownProfile(target.profile) }
            guard let connections else {
                throw AgentError(
                    .proxyUnavailable, message: "this agent has no connection to tenants for the proxy",
                    hint: "run the agent with `rc-agent daemon`")
            }
            let transport = try connections.proxy(profile: target.profile)
            guard let slot = streams.acquire(target.profile) else {
                throw AgentError(
                    .proxyBusy,
                    message: "profile '\(target.profile)' already has \(streams.limit) proxied requests in progress",
                    hint: "wait for one to finish and try again (token requests are not limited)")
            }
            await context.acceptBody()
            let body = try await Self.body(of: &request)
            let headers = Self.forwardable(request.headers.map { (name: $0.name.rawName, value: $0.value) })
            let session = BearerSession(profile: target.profile, tokens: CachedTokenSource(cache: cache, clock: clock))
            let tenant = try await session.tenant()
            let upstream = try await session.exchange(
                retryable: body?.canResend ?? true, status: \.status, discard: { _ = try? await $0.body.collect(upTo: Self.discardedBodyBytes) }
            ) { token in
                try await transport.stream(
                    method: request.method.rawValue, tenant: tenant, path: target.pathAndQuery, headers: headers,
                    body: body, token: token.accessToken)
            }
            let diagnosis = RiskCloudError.forResponse(
                status: upstream.status, headers: upstream.headers, body: [], tenant: tenant, path: target.path,
                endpoint: .api, now: clock.now(), freshToken: await session.refreshedOnce)
            logged["status"] = "\(upstream.status)"
            if let diagnosis { logged["diagnosis"] = "\(diagnosis.code)" }
            audit.info("proxied", metadata: logged.merging(Self.peerMetadata(context.peer)) { $1 })
            return response(
                for: upstream, diagnosis: diagnosis?.code.name, logged: logged, slot: slot,
                pacing: EventLoopPacing(eventLoops: context.eventLoop.map { [$0] } ?? []))
        } catch let error as any RCAgentError {
            let status = error.code.httpStatus
            logged["status"] = "\(status)"
            logged["diagnosis"] = "\(error.code)"
            audit.warning(
                status >= 500 ? "proxy failed" : "proxy refused",
                metadata: logged.merging(Self.peerMetadata(context.peer)) { $1 })
            var response = AgentResponse.error(error)
            response.headers[Self.diagnosisHeader] = error.code.name
            return response
        }
    }

    /// The caller's answer: the tenant's status and headers, the body passed on as the caller's
    /// connection takes it (`pacing`); `slot` is given back once it has been.
    private func response(
        for upstream: StreamingUpstreamResponse, diagnosis: String?, logged: Logger.Metadata, slot: ProxyStreams.Slot,
        pacing: EventLoopPacing
    ) -> Response {
        var headers = HTTPFields()
        for header in Self.forwardable(upstream.headers)
        where !Self.droppedAnswerHeaders.contains(header.name.lowercased()) {
            guard let name = Field.Name(header.name) else { continue }
            headers.append(Field(name: name, value: header.value))
        }
        if let diagnosis { headers[Self.diagnosisHeader] = diagnosis }
        let audit = self.audit
        let body = ResponseBody { writer in
            defer { slot.release() }
            var pacing = pacing
            do {
                for try await chunk in upstream.body {
                    try await writer.write(chunk)
                    try await pacing.wrote(chunk.readableBytes)
                }
                try await writer.finish(nil)
            } catch {
                // The head is out: all that is left is to cut the connection, which tells the caller.
                var metadata = logged
                metadata["error"] = "\(ResponseExcerpt.clean(String(describing: error)))"
                audit.warning("proxied answer cut short", metadata: metadata)
                throw error
            }
        }
        return Response(status: .init(code: upstream.status), headers: headers, body: body)
    }

    /// The request body: nil when there is none, in hand up to ``retryableBodyBytes`` declared
    /// by `Content-Length`, else streamed.
    private static func body(of request: inout Request) async throws -> TenantRequestBody? {
        let length = request.headers[.contentLength].flatMap(Int.init)
        guard length != nil || request.headers[.transferEncoding] != nil else { return nil }
        guard let length, length <= retryableBodyBytes else { return .stream(request.body, length: length) }
        return .bytes(Array(buffer: try await request.collectBody(upTo: retryableBodyBytes)))
    }

    /// `headers` without the hop-by-hop ones and those the `Connection` header names.
    static func forwardable(_ headers: [(name: String, value: String)]) -> [(name: String, value: String)] {
        let named = headers.filter { $0.name.lowercased() == "connection" }
            .flatMap { $0.value.split(separator: ",").map { $0.trimmingBlanks().lowercased() } }
        let dropped = hopByHopHeaders.union(named)
        return headers.filter { !dropped.contains($0.name.lowercased()) }
    }

    /// Who asked, for the audit log.
    static func peerMetadata(_ peer: PeerCredentials) -> Logger.Metadata {
        ["peer_pid": "\(peer.pid)", "peer_uid": "\(peer.uid)", "peer_exe": "\(peer.executable ?? "unknown")"]
    }
}
