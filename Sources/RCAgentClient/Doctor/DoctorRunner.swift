import Foundation
import RCAgentCore

#if canImport(Glibc)
import Glibc
#endif

/// `rc-agent doctor`: the troubleshooting guide's four steps done for the user, plus the local
/// setup around them, as a list of checks.
///
/// Order: `config` → `keyring` → `tenant` (DNS, TCP, TLS) → `auth` (guide step 1, Basic auth at the
/// token endpoint) → `records` (steps 2–3, the bearer token on the least-privilege endpoint) →
/// `permissions` (step 4, a Build Access endpoint; 403 is a warning) → `agent` → `rotation`.
/// A check whose prerequisite did not pass is reported as skipped. Every guide text comes from
/// ``RiskCloudError`` and the other ``RCAgentError`` types: doctor only chooses which applies.
public struct DoctorRunner: Sendable {
    /// What the command line and environment say.
    public struct Input: Sendable {
        public var configFlag: String?
        public var profileFlag: String?
        public var socketFlag: String?
        public var environment: [String: String]

        public init(configFlag: String?, profileFlag: String?, socketFlag: String?, environment: [String: String]) {
            self.configFlag = configFlag
            self.profileFlag = profileFlag
            self.socketFlag = socketFlag
            self.environment = environment
        }
    }

    let input: Input
    let makeStore: @Sendable (Settings) -> any CredentialStore
    let connect: @Sendable (HTTPSettings) throws -> any TenantRequesting
    let resolver: any HostResolving
    let clock: any AgentClock

    public init(
        input: Input, makeStore: @escaping @Sendable (Settings) -> any CredentialStore,
        connect: @escaping @Sendable (HTTPSettings) throws -> any TenantRequesting,
        resolver: any HostResolving, clock: any AgentClock
    ) {
        self.input = input
        self.makeStore = makeStore
        self.connect = connect
        self.resolver = resolver
        self.clock = clock
    }

    /// The least-privilege probe that a token works (risk-cloud-api-facts.md).
    static let recordsPath = "/api/v2/records?page=0&size=1"
    /// A Build Access endpoint: 403 there with a working token is a permissions problem.
    static let applicationsPath = "/api/v2/applications?page=0&size=1"

    /// How a check ended, before timing is added.
    struct Outcome {
        var status: DoctorCheckStatus
        var message: String
        var hint: String?
        var exitStatus: ExitStatus = .ok

        static func ok(_ message: String) -> Outcome { Outcome(status: .ok, message: message) }
        static func warn(_ message: String, hint: String?) -> Outcome {
            Outcome(status: .warn, message: message, hint: hint)
        }
        static func fail(_ error: any RCAgentError) -> Outcome {
            Outcome(status: .fail, message: error.message, hint: error.hint, exitStatus: error.exitStatus)
        }
    }

    /// Runs every check and returns the report; never throws.
    public func run() async -> DoctorReport {
        var results: [DoctorCheckResult] = []
        var settings: Settings?
        var tenant: TenantURL?
        var credential: StoredCredential?
        var transport: (any TenantRequesting)?
        var token: AccessToken?

        func check(_ id: String, needs: [String], _ body: () async throws -> Outcome) async {
            if let blocker = needs.first(where: { need in
                !results.contains { $0.id == need && ($0.status == .ok || $0.status == .warn) }
            }) {
                results.append(DoctorCheckResult(
                    id: id, status: .skip, message: "skipped: the \(blocker) check did not pass", hint: nil,
                    elapsedMS: 0))
                return
            }
            let start = clock.now()
            let outcome: Outcome
            do {
                outcome = try await body()
            } catch let error as any RCAgentError {
                outcome = .fail(error)
            } catch {
                outcome = Outcome(status: .fail, message: "\(error)", hint: nil, exitStatus: .failure)
            }
            results.append(DoctorCheckResult(
                id: id, status: outcome.status, message: outcome.message, hint: outcome.hint,
                elapsedMS: milliseconds(since: start), exitStatus: outcome.exitStatus))
        }

        await check("config", needs: []) {
            let resolved = try Settings(
                configFlag: input.configFlag, profileFlag: input.profileFlag, environment: input.environment)
            settings = resolved
            guard let url = try resolved.tenantURL(profile: resolved.profile) else {
                throw AgentError.unknownProfile(resolved.profile)
            }
            tenant = url
            let source = input.environment["RC_AGENT_URL"].map { $0.isEmpty ? "" : " (from RC_AGENT_URL)" } ?? ""
            let message = "\(resolved.configPath) parses; profile '\(resolved.profile)' uses \(url.base)\(source)"
            if !resolved.config.warnings.isEmpty {
                return .warn(message + "; " + resolved.config.warnings.joined(separator: "; "),
                    hint: "remove or correct the unknown keys")
            }
            return .ok(message)
        }

        await check("keyring", needs: ["config"]) {
            guard let settings else { throw MissingPrerequisite() }
            guard let stored = try await makeStore(settings).load(profile: settings.profile) else {
                throw NotLoggedInError(profile: settings.profile)
            }
            credential = stored
            return .ok(
                "Secret Service reachable, collection unlocked, credentials for '\(settings.profile)' present "
                    + "(client id \(StatusReport.shorten(stored.clientID)))")
        }

        await check("tenant", needs: ["config"]) {
            guard let settings, let tenant else { throw MissingPrerequisite() }
            let http = HTTPSettings(settings: settings, profile: settings.profile)
            let proxy = try ProxySettings.from(environment: http.environment)
            let client = try connect(http)
            transport = client
            var parts: [String] = []
            if let proxy, !proxy.bypasses(host: tenant.host) {
                parts.append("via the proxy \(proxy.host):\(proxy.port) (it resolves \(tenant.host))")
            } else {
                let start = clock.now()
                guard let addresses = await resolver.resolve(host: tenant.host), !addresses.isEmpty else {
                    throw RiskCloudError(.dnsFailure(host: tenant.host), tenant: tenant.base, path: "")
                }
                parts.append("DNS \(tenant.host) → \(addresses.prefix(2).joined(separator: ", ")) "
                    + "(\(milliseconds(since: start)) ms)")
            }
            let start = clock.now()
            let status: Int
            do {
                status = try await client.send(
                    method: "GET", tenant: tenant, path: "/", headers: [], body: nil, token: nil,
                    maxBodyBytes: 1 << 20
                ).status
            } catch let error as RiskCloudError where error.upstreamStatus != nil {
                // An answer too big to keep is still an answer: the tenant is reachable.
                status = error.upstreamStatus ?? 0
            }
            let how = tenant.scheme == "https" ? "TCP and TLS" : "TCP (plain http, loopback)"
            parts.append("\(how) to \(tenant.base): HTTP \(status) in \(milliseconds(since: start)) ms")
            return .ok(parts.joined(separator: "; "))
        }

        await check("auth", needs: ["keyring", "tenant"]) {
            guard let settings, let tenant, let credential, let transport else { throw MissingPrerequisite() }
            do {
                let fetched = try await transport.fetchToken(
                    tenant: tenant, clientID: credential.clientID, secret: credential.secret)
                token = fetched
                let days = Int(fetched.remaining(at: clock.now()) / 86_400)
                return .ok(
                    "POST /api/v1/account/token with Basic auth: the tenant accepted the Client ID and Secret "
                        + "(token valid for \(days) more day\(days == 1 ? "" : "s"))")
            } catch let error as RiskCloudError where error.kind == .credentialsRejected {
                let mistakes = CredentialHeuristics.detect(
                    clientID: credential.clientID, secret: credential.secret, tenant: tenant,
                    storedURL: credential.url)
                let explained = error.explained(by: mistakes, profile: settings.profile)
                return Outcome(
                    status: .fail, message: explained.message, hint: explained.hint, exitStatus: error.exitStatus)
            }
        }

        await check("records", needs: ["auth"]) {
            guard let tenant, let credential, let transport, var current = token else { throw MissingPrerequisite() }
            var response = try await transport.bearerGET(tenant: tenant, path: Self.recordsPath, token: current.value)
            var renewed = false
            if response.status == 401 {
                // The guide's step 2: a fresh bearer token, once.
                current = try await transport.fetchToken(
                    tenant: tenant, clientID: credential.clientID, secret: credential.secret)
                token = current
                renewed = true
                response = try await transport.bearerGET(tenant: tenant, path: Self.recordsPath, token: current.value)
            }
            try diagnose(response, tenant: tenant, path: Self.recordsPath, token: current)
            let total = try v2Page(response, tenant: tenant, path: Self.recordsPath)
            return .ok(
                "GET \(Self.recordsPath) with the bearer token: HTTP \(response.status)"
                    + (total.map { ", \($0) record\($0 == 1 ? "" : "s") visible" } ?? "")
                    + (renewed ? " (the first token was refused; a fresh one worked)" : ""))
        }

        await check("permissions", needs: ["records"]) {
            guard let tenant, let transport, let token else { throw MissingPrerequisite() }
            let response = try await transport.bearerGET(tenant: tenant, path: Self.applicationsPath, token: token.value)
            do {
                try diagnose(response, tenant: tenant, path: Self.applicationsPath, token: token)
            } catch let error as RiskCloudError {
                if case .forbidden = error.kind { return .warn(error.message, hint: error.hint) }
                throw error
            }
            return .ok("GET \(Self.applicationsPath): HTTP \(response.status) (the user has Build Access)")
        }

        await check("agent", needs: []) {
            await agentCheck(profile: settings?.profile)
        }

        await check("rotation", needs: ["keyring"]) {
            guard let settings, let credential else { throw MissingPrerequisite() }
            let status = RotationPolicy(config: settings.config, profile: settings.profile)
                .status(created: credential.created, now: clock.now())
            if let reminder = status.reminder(profile: settings.profile) {
                return .warn(reminder, hint: RotationService.resetSecretStep)
            }
            return .ok(
                "the Client Secret is \(status.ageDays) day\(status.ageDays == 1 ? "" : "s") old; rotation due "
                    + "\(RotationStatus.day(status.dueAt)) (every \(status.rotateAfterDays) days)")
        }

        try? await transport?.shutdown()
        return DoctorReport(checks: results)
    }

    /// Throws the diagnosis of a non-2xx answer to a bearer call.
    private func diagnose(_ response: UpstreamResponse, tenant: TenantURL, path: String, token: AccessToken) throws {
        if let error = RiskCloudError.forResponse(
            status: response.status, headers: response.headers, body: response.body, tenant: tenant,
            path: String(path.prefix { $0 != "?" }), endpoint: .api, now: clock.now(), redacting: [token.value.reveal()])
        {
            throw error
        }
    }

    /// Checks that a 2xx body is a v2 page (`{content[], page{totalElements}}`); returns `totalElements`.
    private func v2Page(_ response: UpstreamResponse, tenant: TenantURL, path: String) throws -> Int? {
        guard let object = try? JSONSerialization.jsonObject(with: Data(response.body)) as? [String: Any],
            object["content"] is [Any]
        else {
            let excerpt = ResponseExcerpt.make(response.body)
            throw RiskCloudError(
                .unexpectedResponse(
                    status: response.status, excerpt: "not a v2 page" + (excerpt.isEmpty ? "" : ": \(excerpt)")),
                tenant: tenant.base, path: String(path.prefix { $0 != "?" }))
        }
        return ((object["page"] as? [String: Any])?["totalElements"] as? NSNumber)?.intValue
    }

    /// The agent: running, socket directory 0700 and socket 0600 owned by us, the peer check lets us
    /// in, and its token state for `profile`. Not running is a warning: commands start it on demand.
    private func agentCheck(profile: String?) async -> Outcome {
        let path = AgentSocket.path(flag: input.socketFlag, environment: input.environment)
        switch AgentSocket.probe(path) {
        case .absent:
            let error = AgentError.unreachable(socket: path, detail: "no agent is running")
            return .warn(error.message + " (`rc-agent token` and `rc-agent api` start one on demand)", hint: error.hint)
        case .stale:
            let error = AgentError.unreachable(socket: path, detail: "a stale socket is left, nothing listens on it")
            return .warn(error.message, hint: error.hint)
        case .notASocket:
            return .fail(SocketSetupError(
                "\(path) exists and is not a socket", hint: "remove it, or point --socket / RC_AGENT_SOCK elsewhere"))
        case .live:
            break
        }
        do {
            try AgentSocket.prepareDirectory(forSocket: path)
        } catch let error as SocketSetupError {
            return .fail(error)
        } catch {
            return .fail(SocketSetupError("\(error)"))
        }
        var info = stat()
        guard lstat(path, &info) == 0 else { return .fail(SocketSetupError("cannot inspect \(path)")) }
        let mode = info.st_mode & 0o777
        guard info.st_uid == geteuid(), mode & 0o077 == 0 else {
            return .fail(SocketSetupError(
                "\(path) is mode \(String(mode, radix: 8)) owned by uid \(info.st_uid); it must be 0600 and yours",
                hint: "restart the agent: `rc-agent stop`, then `eval \"$(rc-agent start)\"`"))
        }
        let status: AgentStatus
        do {
            status = try await AgentClient(socketPath: path, timeout: 5).status()
        } catch let error as any RCAgentError {
            return .fail(error)
        } catch {
            return .fail(AgentError.unreachable(socket: path, detail: "\(error)"))
        }
        var message = "agent pid \(status.pid) (\(status.version)) on \(path): directory 0700, socket "
            + "\(String(mode, radix: 8)), peer check accepts uid \(geteuid())"
        guard let profile, let entry = status.profiles.first(where: { $0.profile == profile }) else {
            return .ok(message)
        }
        switch entry.token.state {
        case .valid:
            message += "; token for '\(profile)' valid" + (entry.token.expiresIn.map { " for \($0 / 86_400) days" } ?? "")
        case .none:
            message += "; no token for '\(profile)' yet (fetched on first use)"
        case .refreshing:
            message += "; fetching a token for '\(profile)'"
        case .failing:
            let last = entry.lastError
            return .warn(
                message + "; its last token request for '\(profile)' failed: "
                    + (last?.message ?? "unknown error"), hint: last?.hint)
        }
        if status.version != RCAgentVersion.current {
            return .warn(
                message + "; it runs version \(status.version), this is \(RCAgentVersion.current)",
                hint: "restart it: `rc-agent stop`, then `eval \"$(rc-agent start)\"`")
        }
        return .ok(message)
    }

    /// A check ran without what its prerequisites provide (cannot happen: `needs` skips it first).
    private struct MissingPrerequisite: Error {}

    private func milliseconds(since start: Date) -> Int {
        max(0, Int((clock.now().timeIntervalSince(start) * 1000).rounded()))
    }
}
