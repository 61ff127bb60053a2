import FoundationEssentials
import Glibc
import Hummingbird
import RCAgentCore

/// `GET /v1/status`, `GET /healthz`, `POST /v1/reload`, `POST /v1/shutdown`.
struct StatusRoutes: Sendable {
    let api: AgentAPI

    func register(on router: Router<AgentRequestContext>) {
        router.get("/v1/status", use: statusDocument)
        router.get("/healthz", use: health)
        router.post("/v1/reload", use: reload)
        router.post("/v1/shutdown", use: shutdown)
    }

    /// What SIGHUP does, for a client that changed the config (`rc-agent profile use`): the config
    /// again, and no backoff or `credentials_rejected` latch. A config that does not parse is
    /// the answer's error, and the agent keeps the one it had.
    @Sendable func reload(_ request: Request, context: AgentRequestContext) async throws -> Response {
        context.logger.info("reload requested", metadata: ["peer_pid": "\(context.peer.pid)"])
        try api.profiles.reload()
        await api.cache.resetFailures()
        return try AgentResponse.encoded(WireJSON.Acknowledgement())
    }

    @Sendable func statusDocument(_ request: Request, context: AgentRequestContext) async throws -> Response {
        try AgentResponse.encoded(await status())
    }

    /// Answers without touching the cache or the keyring.
    @Sendable func health(_ request: Request, context: AgentRequestContext) async throws -> Response {
        Response(
            status: .ok, headers: [.contentType: "text/plain; charset=utf-8"],
            body: .init(byteBuffer: ByteBuffer(string: "ok\n")))
    }

    /// Answers first, then asks the service group to shut down.
    @Sendable func shutdown(_ request: Request, context: AgentRequestContext) async throws -> Response {
        context.logger.info("shutdown requested", metadata: ["peer_pid": "\(context.peer.pid)"])
        let requestShutdown = api.requestShutdown
        Task { await requestShutdown() }
        return try AgentResponse.encoded(WireJSON.Acknowledgement())
    }

    /// The agent and what it knows per profile.
    func status() async -> AgentStatus {
        let now = api.clock.now()
        let cached = await api.cache.status()
        let configured = api.profiles.all
        var names = Set(configured.keys).union(cached.map(\.profile))
        names.formUnion(((try? await api.store.list()) ?? []).map(\.profile))
        let states = await api.store.states(profiles: Array(names))
        let byName = Dictionary(cached.map { ($0.profile, $0) }, uniquingKeysWith: { first, _ in first })
        let entries = names.sorted().map { name -> AgentStatus.Profile in
            let entry = byName[name]
            let state = states[name]
            let item = state?.summary
            let configuredURL = configured[name] ?? nil
            return AgentStatus.Profile(
                profile: name,
                url: entry?.tenant?.base ?? item?.url ?? configuredURL,
                clientID: entry?.clientID ?? item?.clientID,
                keyring: state?.keyring ?? .unavailable,
                token: AgentStatus.TokenInfo(
                    state: entry?.state ?? .none,
                    expiresAt: entry?.expiresAt.map(WireJSON.rfc3339),
                    expiresIn: entry?.expiresAt.map { max(0, Int($0.timeIntervalSince(now))) }),
                lastError: entry?.lastError.map {
                    ErrorInfo(code: $0.code.name, message: $0.message, hint: $0.hint, upstreamStatus: $0.upstreamStatus)
                },
                rotation: item?.created.map { api.profiles.rotationPolicy(for: name).status(created: $0, now: now) },
                backend: state?.backend)
        }
        let keyringState = entries.map(\.keyring).first { $0 == .unavailable || $0 == .locked } ?? .ok
        return AgentStatus(
            version: RCAgentVersion.current, pid: getpid(), uptime: max(0, Int(now.timeIntervalSince(api.startedAt))),
            socket: api.socketPath, keyring: keyringState, profiles: entries)
    }
}
