import FoundationEssentials
import Hummingbird
import Logging
import RCAgentCore

/// `GET /v1/token`, `POST /v1/token/refresh`, `DELETE /v1/token`.
struct TokenRoutes: Sendable {
    let api: AgentAPI

    func register(on router: Router<AgentRequestContext>) {
        router.get("/v1/token", use: token)
        router.post("/v1/token/refresh", use: refresh)
        router.delete("/v1/token", use: forget)
    }

    /// A token with at least `min_valid` seconds left.
    @Sendable func token(_ request: Request, context: AgentRequestContext) async throws -> Response {
        let profile = try profile(request)
        let minValid = try Self.minValid(request)
        try requireKnown(profile)
        let served = try await api.cache.token(profile: profile, minValid: minValid)
        logServed(served, route: "token", peer: context.peer)
        return try answer(served, request: request)
    }

    /// A token fetched now (forced refreshes close together share one call).
    @Sendable func refresh(_ request: Request, context: AgentRequestContext) async throws -> Response {
        let profile = try profile(request)
        try requireKnown(profile)
        let served = try await api.cache.refresh(profile: profile)
        logServed(served, route: "refresh", peer: context.peer)
        return try answer(served, request: request)
    }

    /// Forgets the profile's token and failure state (after login, rotate, logout). The
    /// `credentials_rejected` latch stays while the stored credentials are the ones the tenant
    /// refused: a script that answers every 401 with `DELETE` and `GET` must not make the agent
    /// send the same refused secret again and again.
    @Sendable func forget(_ request: Request, context: AgentRequestContext) async throws -> Response {
        let profile = try profile(request)
        try? api.profiles.reload()
        let metadata: Logger.Metadata = ["profile": "\(profile)", "peer_pid": "\(context.peer.pid)"]
        if let refused = await api.cache.rejectedCredential(profile: profile),
            let stored = try? await api.store.load(profile: profile),
            CredentialFingerprint(stored) == refused
        {
            context.logger.info("credentials unchanged since the tenant refused them; keeping credentials_rejected", metadata: metadata)
        } else {
            await api.cache.invalidate(profile: profile)
            context.logger.info("token forgotten on request", metadata: metadata)
        }
        return try AgentResponse.encoded(WireJSON.Acknowledgement(profile: profile))
    }

    // MARK: Helpers

    private func requireKnown(_ profile: String) throws {
        guard api.profiles.contains(profile) else { throw AgentError.unknownProfile(profile) }
    }

    /// One audit line per token handed out: who got a token for which profile. Never the token.
    private func logServed(_ served: ServedToken, route: String, peer: PeerCredentials) {
        Self.logServed(api.audit, route: route, profile: served.profile, peer: peer, executable: peer.executable)
    }

    /// The audit line `token served`; `count` (the fast path's coalesced lines) is how many tokens it stands for.
    static func logServed(
        _ audit: Logger, route: String, profile: String, peer: PeerCredentials, executable: String?, count: Int? = nil
    ) {
        var metadata: Logger.Metadata = [
            "route": "\(route)", "profile": "\(profile)", "peer_pid": "\(peer.pid)", "peer_uid": "\(peer.uid)",
            "peer_exe": "\(executable ?? "unknown")",
        ]
        if let count { metadata["count"] = "\(count)" }
        audit.info("token served", metadata: metadata)
    }

    private func answer(_ served: ServedToken, request: Request) throws -> Response {
        let body = TokenResponse(served, now: api.clock.now(), policy: api.profiles.rotationPolicy(for: served.profile))
        let wantsText = Self.wantsText(format: request.uri.queryParameters.get("format"), accept: request.headers[.accept])
        let answer = wantsText ? TokenAnswer.text(body.accessToken) : try TokenAnswer.json(body)
        return Response(status: .ok, headers: answer.head.headerFields, body: .init(byteBuffer: answer.body))
    }

    /// The bare token for `format=text`, or for an `Accept` that names `text/plain` and no JSON.
    static func wantsText(format: String?, accept: String?) -> Bool {
        if format == "text" { return true }
        // Most clients send none, `*/*` or exactly `text/plain`: no substring search for them (the
        // fast path asks per request).
        guard let accept, accept != "*/*" else { return false }
        if accept == "text/plain" { return true }
        return accept.contains("text/plain") && !accept.contains("json")
    }

    /// The `profile` parameter, else the config's default profile.
    func profile(_ request: Request) throws -> String {
        let name = request.uri.queryParameters.get("profile") ?? api.profiles.defaultProfile
        guard ProfileName.isValid(name) else {
            throw AgentError.badRequest("invalid profile name '\(name)'", hint: ProfileName.rule)
        }
        return name
    }

    static func minValid(_ request: Request) throws -> Double {
        try minValid(raw: request.uri.queryParameters.get("min_valid"))
    }

    /// `min_valid` as given (nil: absent, the default 60 s).
    static func minValid(raw: String?) throws -> Double {
        guard let raw else { return 60 }
        guard let seconds = Int(raw), seconds >= 0, seconds <= 366 * 86_400 else {
            throw AgentError.badRequest(
                "min_valid must be a whole number of seconds between 0 and 31622400, not '\(raw)'")
        }
        return Double(seconds)
    }
}
