import Foundation
import Hummingbird
import Logging
import Synchronization

/// The config file as the running agent last read it: which profiles exist and their policies.
///
/// Read at start and on reload (SIGHUP); a name it does not know makes it read the file once more
/// before answering `unknown_profile`, so a `login` while the agent runs needs no reload.
public final class AgentProfiles: Sendable {
    private let load: @Sendable () throws -> ConfigFile
    private let snapshot: Mutex<ConfigFile>

    /// - Parameter config: reads the config file.
    public init(config load: @escaping @Sendable () throws -> ConfigFile) throws {
        self.load = load
        snapshot = Mutex(try load())
    }

    /// Profiles with their URLs and no other settings (tests, and callers without a config file).
    public convenience init(load: @escaping @Sendable () throws -> [String: String?]) throws {
        try self.init(config: {
            var config = ConfigFile()
            config.profiles = try load().mapValues { ProfileConfig(url: $0) }
            return config
        })
    }

    /// Reads the config file again.
    public func reload() throws {
        let fresh = try load()
        snapshot.withLock { $0 = fresh }
    }

    /// Every profile and its configured URL.
    public var all: [String: String?] { snapshot.withLock { $0.profiles.mapValues(\.url) } }

    /// True when the config names `profile` (re-reading the file once if it did not).
    public func contains(_ profile: String) -> Bool {
        if snapshot.withLock({ $0.profiles[profile] != nil }) { return true }
        try? reload()
        return snapshot.withLock { $0.profiles[profile] != nil }
    }

    /// The rotation policy of `profile` in the current config.
    public func rotationPolicy(for profile: String) -> RotationPolicy {
        snapshot.withLock { RotationPolicy(config: $0, profile: profile) }
    }
}

/// `GET /v1/status`: the agent and what it knows per profile.
public struct AgentStatus: Codable, Sendable, Equatable {
    public var version: String
    public var pid: Int32
    /// Seconds since the agent started.
    public var uptime: Int
    public var socket: String
    /// `ok`, `locked` or `unavailable`.
    public var keyring: String
    public var profiles: [Profile]

    public struct Profile: Codable, Sendable, Equatable {
        public var profile: String
        public var url: String?
        public var clientID: String?
        /// `ok`, `locked`, `missing` (no item) or `unavailable`.
        public var keyring: String
        public var token: TokenInfo
        public var lastError: ErrorInfo?
        /// The secret's age against the rotation policy, when the keyring item says when it was stored.
        public var rotation: RotationStatus?

        enum CodingKeys: String, CodingKey {
            case profile, url, keyring, token, rotation
            case clientID = "client_id"
            case lastError = "last_error"
        }
    }

    public struct TokenInfo: Codable, Sendable, Equatable {
        /// `none`, `valid`, `refreshing` or `failing`.
        public var state: TokenState
        /// RFC 3339 UTC.
        public var expiresAt: String?
        public var expiresIn: Int?

        enum CodingKeys: String, CodingKey {
            case state
            case expiresAt = "expires_at"
            case expiresIn = "expires_in"
        }
    }
}

/// An error document: `{"error":{"code","message","hint","upstream_status"}}`.
public struct ErrorInfo: Codable, Sendable, Equatable {
    public var code: String
    public var message: String
    public var hint: String?
    public var upstreamStatus: Int?

    enum CodingKeys: String, CodingKey {
        case code, message, hint
        case upstreamStatus = "upstream_status"
    }
}

/// `GET /v1/token`'s answer.
public struct TokenResponse: Codable, Sendable, Equatable {
    public var accessToken: Secret
    /// Always `Bearer`.
    public var tokenType: String
    /// RFC 3339 UTC.
    public var expiresAt: String
    /// Whole seconds left when the agent answered.
    public var expiresIn: Int
    public var profile: String
    public var url: String
    /// The secret's age against the rotation policy (absent when the agent does not know it).
    public var rotation: RotationStatus?

    enum CodingKeys: String, CodingKey {
        case accessToken = "access_token"
        case tokenType = "token_type"
        case expiresAt = "expires_at"
        case expiresIn = "expires_in"
        case profile, url, rotation
    }

    /// The JSON document as the agent sends it (one line and a newline) — it holds the token.
    public func jsonText() throws -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return String(decoding: try encoder.encode(self), as: UTF8.self) + "\n"
    }

    public init(_ served: ServedToken, now: Date, policy: RotationPolicy? = nil) {
        accessToken = served.token.value
        tokenType = "Bearer"
        expiresAt = AgentAPI.rfc3339(served.token.expiresAt)
        expiresIn = max(0, Int(served.token.remaining(at: now)))
        profile = served.profile
        url = served.tenant.base
        if let policy, let created = served.secretCreated {
            rotation = policy.status(created: created, now: now)
        }
    }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        accessToken = Secret(try container.decode(String.self, forKey: .accessToken))
        tokenType = try container.decode(String.self, forKey: .tokenType)
        expiresAt = try container.decode(String.self, forKey: .expiresAt)
        expiresIn = try container.decode(Int.self, forKey: .expiresIn)
        profile = try container.decode(String.self, forKey: .profile)
        url = try container.decode(String.self, forKey: .url)
        rotation = try container.decodeIfPresent(RotationStatus.self, forKey: .rotation)
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(accessToken.reveal(), forKey: .accessToken)
        try container.encode(tokenType, forKey: .tokenType)
        try container.encode(expiresAt, forKey: .expiresAt)
        try container.encode(expiresIn, forKey: .expiresIn)
        try container.encode(profile, forKey: .profile)
        try container.encode(url, forKey: .url)
        try container.encodeIfPresent(rotation, forKey: .rotation)
    }
}

/// The socket API's routes (PROTOCOL.md): tokens, status, health, shutdown.
public struct AgentAPI: Sendable {
    let cache: TokenCache
    let profiles: AgentProfiles
    let store: any CredentialStore
    let clock: any AgentClock
    let socketPath: String
    let startedAt: Date
    let requestShutdown: @Sendable () async -> Void
    let audit: Logger
    /// The tenant's HTTP side for `/v1/proxy/…` (``AgentProxy``); nil: the proxy answers 503.
    public var proxyTransport: (any TenantStreaming)? = nil

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

    /// The router with every route and the JSON error mapping.
    public func router() -> Router<AgentRequestContext> {
        let router = Router(context: AgentRequestContext.self)
        router.add(middleware: ErrorMiddleware())
        AgentProxy(api: self).register(on: router)
        router.get("/v1/token") { request, context in
            let profile = try Self.profile(request)
            let minValid = try Self.minValid(request)
            try self.requireKnown(profile)
            let served = try await self.cache.token(profile: profile, minValid: minValid)
            self.logServed(served, route: "token", peer: context.peer)
            return try self.tokenResponse(served, request: request)
        }
        router.post("/v1/token/refresh") { request, context in
            let profile = try Self.profile(request)
            try self.requireKnown(profile)
            let served = try await self.cache.refresh(profile: profile)
            self.logServed(served, route: "refresh", peer: context.peer)
            return try self.tokenResponse(served, request: request)
        }
        router.delete("/v1/token") { request, context in
            let profile = try Self.profile(request)
            try? self.profiles.reload()
            await self.cache.invalidate(profile: profile)
            context.logger.info("token forgotten on request", metadata: ["profile": "\(profile)", "peer_pid": "\(context.peer.pid)"])
            return Self.json(["ok": true, "profile": profile] as [String: any Sendable])
        }
        router.get("/v1/status") { _, _ in
            try Self.encoded(await self.status())
        }
        router.get("/healthz") { _, _ in
            Response(status: .ok, headers: [.contentType: "text/plain; charset=utf-8"], body: .init(byteBuffer: ByteBuffer(string: "ok\n")))
        }
        router.post("/v1/shutdown") { _, context in
            context.logger.info("shutdown requested", metadata: ["peer_pid": "\(context.peer.pid)"])
            Task {
                await self.requestShutdown()
            }
            return Self.json(["ok": true])
        }
        return router
    }

    /// What `GET /v1/status` answers.
    public func status() async -> AgentStatus {
        let now = clock.now()
        let cached = await cache.status()
        let keyringState: String
        var items: [String: CredentialSummary] = [:]
        do {
            for summary in try await store.list() { items[summary.profile] = summary }
            keyringState = "ok"
        } catch let error as KeyringError where error == .locked {
            keyringState = "locked"
        } catch {
            keyringState = "unavailable"
        }
        let configured = profiles.all
        let names = Set(configured.keys).union(items.keys).union(cached.map(\.profile)).sorted()
        let byName = Dictionary(cached.map { ($0.profile, $0) }, uniquingKeysWith: { first, _ in first })
        let entries = names.map { name -> AgentStatus.Profile in
            let entry = byName[name]
            let item = items[name]
            let keyring: String
            if keyringState != "ok" {
                keyring = keyringState
            } else if let item {
                keyring = item.locked ? "locked" : "ok"
            } else {
                keyring = "missing"
            }
            let configuredURL = configured[name] ?? nil
            return AgentStatus.Profile(
                profile: name,
                url: entry?.tenant?.base ?? item?.url ?? configuredURL,
                clientID: entry?.clientID ?? item?.clientID,
                keyring: keyring,
                token: AgentStatus.TokenInfo(
                    state: entry?.state ?? .none,
                    expiresAt: entry?.expiresAt.map(Self.rfc3339),
                    expiresIn: entry?.expiresAt.map { max(0, Int($0.timeIntervalSince(now))) }),
                lastError: entry?.lastError.map {
                    ErrorInfo(code: $0.code, message: $0.message, hint: $0.hint, upstreamStatus: $0.upstreamStatus)
                },
                rotation: item?.created.map { profiles.rotationPolicy(for: name).status(created: $0, now: now) })
        }
        return AgentStatus(
            version: RCAgentVersion.current, pid: getpid(), uptime: max(0, Int(now.timeIntervalSince(startedAt))),
            socket: socketPath, keyring: keyringState, profiles: entries)
    }

    // MARK: Helpers

    private func requireKnown(_ profile: String) throws {
        guard profiles.contains(profile) else { throw AgentError.unknownProfile(profile) }
    }

    /// One audit line per token handed out: who got a token for which profile. Never the token.
    private func logServed(_ served: ServedToken, route: String, peer: PeerCredentials) {
        audit.info(
            "token served",
            metadata: [
                "route": "\(route)", "profile": "\(served.profile)", "peer_pid": "\(peer.pid)",
                "peer_uid": "\(peer.uid)", "peer_exe": "\(peer.executable ?? "unknown")",
            ])
    }

    private func tokenResponse(_ served: ServedToken, request: Request) throws -> Response {
        let body = TokenResponse(served, now: clock.now(), policy: profiles.rotationPolicy(for: served.profile))
        let accept = request.headers[.accept] ?? ""
        let wantsText = request.uri.queryParameters.get("format") == "text"
            || (accept.contains("text/plain") && !accept.contains("json"))
        var response: Response
        if wantsText {
            response = Response(
                status: .ok, headers: [.contentType: "text/plain; charset=utf-8"],
                body: .init(byteBuffer: ByteBuffer(string: body.accessToken.reveal() + "\n")))
        } else {
            response = try Self.encoded(body)
        }
        response.headers[.cacheControl] = "no-store"
        return response
    }

    static func profile(_ request: Request) throws -> String {
        let name = request.uri.queryParameters.get("profile") ?? "default"
        guard ProfileName.isValid(name) else {
            throw AgentError.badRequest("invalid profile name '\(name)'", hint: ProfileName.rule)
        }
        return name
    }

    static func minValid(_ request: Request) throws -> Double {
        guard let raw = request.uri.queryParameters.get("min_valid") else { return 60 }
        guard let seconds = Int(raw), seconds >= 0, seconds <= 366 * 86_400 else {
            throw AgentError.badRequest(
                "min_valid must be a whole number of seconds between 0 and 31622400, not '\(raw)'")
        }
        return Double(seconds)
    }

    /// `2026-01-31T12:00:00Z`. The Swift-native format style: an `ISO8601DateFormatter` per call
    /// built an ICU formatter each time, 40 % of the agent's CPU per cached token (docs/BENCHMARKS.md).
    static func rfc3339(_ date: Date) -> String {
        date.formatted(.iso8601)
    }

    static func encoded(_ value: some Encodable, status: HTTPResponse.Status = .ok) throws -> Response {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        var data = try encoder.encode(value)
        data.append(UInt8(ascii: "\n"))
        return Response(
            status: status, headers: [.contentType: "application/json"], body: .init(byteBuffer: ByteBuffer(bytes: data)))
    }

    static func json(_ object: [String: any Sendable], status: HTTPResponse.Status = .ok) -> Response {
        let data = (try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys, .withoutEscapingSlashes])) ?? Data("{}".utf8)
        return Response(
            status: status, headers: [.contentType: "application/json"],
            body: .init(byteBuffer: ByteBuffer(bytes: data + [UInt8(ascii: "\n")])))
    }

    private struct ErrorDocument: Encodable {
        let error: ErrorInfo
    }

    static func errorBody(_ error: any RCAgentError) -> Data {
        let info = ErrorInfo(
            code: error.code, message: error.message, hint: error.hint,
            upstreamStatus: (error as? AgentError)?.upstreamStatus ?? (error as? UpstreamFailure)?.upstreamStatus)
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return ((try? encoder.encode(ErrorDocument(error: info))) ?? Data()) + Data("\n".utf8)
    }

    /// The JSON error response for `error`, with the status ``AgentError/httpStatus(for:)`` gives.
    static func errorResponse(_ error: any RCAgentError) -> Response {
        var response = Response(
            status: .init(code: AgentError.httpStatus(for: error)), headers: [.contentType: "application/json"],
            body: .init(byteBuffer: ByteBuffer(bytes: errorBody(error))))
        if let retryAfter = (error as? UpstreamFailure)?.retryAfterSeconds, retryAfter > 0 {
            response.headers[.retryAfter] = String(Int(retryAfter.rounded(.up)))
        }
        return response
    }

    /// A complete HTTP/1.1 response as text, for connections refused before HTTP parsing.
    static func rawErrorResponse(status: String, error: AgentError) -> String {
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
            if AgentError.httpStatus(for: error) >= 500 {
                context.logger.warning(
                    "request failed", metadata: ["path": "\(request.uri.path)", "code": "\(error.code)"])
            }
            return AgentAPI.errorResponse(error)
        } catch let error as HTTPError where error.status == .notFound {
            return AgentAPI.errorResponse(AgentError.notFound("\(request.method) \(request.uri.path)"))
        } catch let error as HTTPError {
            return AgentAPI.errorResponse(
                AgentError(
                    code: "bad_request", message: error.body ?? "\(error.status.reasonPhrase)", hint: "see PROTOCOL.md",
                    httpStatus: error.status.code))
        }
    }
}
