import FoundationEssentials
import RCAgentCore

#if canImport(Glibc)
import Glibc
#endif

/// The checks of `rc-agent doctor`, one type each, run in order by ``DoctorRunner``. Each takes
/// what the checks before it found and returns what it finds.
enum DoctorChecks {
    /// The least-privilege probe that a token works (risk-cloud-api-facts.md).
    static let recordsPath = "/api/v2/records?page=0&size=1"
    /// A Build Access endpoint: 403 there with a working token is a permissions problem.
    static let applicationsPath = "/api/v2/applications?page=0&size=1"

    /// The settings and the tenant the profile uses.
    struct Profile {
        let settings: Settings
        let tenant: TenantURL
    }

    /// An HTTP client for the tenant, which answered.
    struct Connection {
        let tenant: TenantURL
        let transport: any TenantRequesting
    }

    /// `config`: the file parses and the profile has a tenant URL.
    struct Config {
        let input: DoctorRunner.Input

        func run() throws -> Checked<Profile> {
            let settings = try Settings(
                configFlag: input.configFlag, profileFlag: input.profileFlag, environment: input.environment)
            guard let url = try settings.tenantURL(profile: settings.profile) else {
                throw AgentError.unknownProfile(settings.profile)
            }
            let found = Profile(settings: settings, tenant: url)
            let source = input.environment["RC_AGENT_URL"].map { $0.isEmpty ? "" : " (from RC_AGENT_URL)" } ?? ""
            let message = "\(settings.configPath) parses; profile '\(settings.profile)' uses \(url.base)\(source)"
            if !settings.config.warnings.isEmpty {
                return .warn(
                    message + "; " + settings.config.warnings.joined(separator: "; "),
                    hint: "correct what the warnings name (unknown keys are ignored)", found)
            }
            return .ok(message, found)
        }
    }

    /// `credentials`: the profile's backend has its Client ID and Secret — the Secret Service
    /// answers and is unlocked, the kernel key is there, both variables are set, the file is
    /// readable (and private: a file others can read is a warning) — and they were stored for the
    /// tenant the profile uses (else nothing is sent to that tenant).
    struct Credentials {
        let store: any CredentialStore

        func run(_ profile: Profile) async throws -> Checked<StoredCredential> {
            let name = profile.settings.profile
            let backend = store.backend(for: name)
            guard let stored = try await store.load(profile: name) else { throw Self.missing(name, backend) }
            _ = try stored.tenant(requested: profile.settings.requestedTenant(profile: name))
            let id = StatusReport.shorten(stored.clientID)
            var message: String
            switch backend {
            case .secretService:
                message = "Secret Service reachable, collection unlocked, credentials for '\(name)' present (client id \(id))"
            case .keyctl:
                let key = CredentialBackend.keyctlKeyPrefix + name
                let lifetime = CredentialBackend.keyctlLifetime
                message = "kernel keyring: key \(key) present in the persistent keyring (client id \(id)); it \(lifetime)"
            case .env:
                message = "credentials for '\(name)' from the environment (client id \(id), tenant \(stored.url)); "
                    + "nothing is stored and no agent is needed"
            case .file:
                message = "secret for '\(name)' read from \(store.readOnly(profile: name)?.location ?? "its file") "
                    + "(client id \(id) from the config)"
            }
            let warnings = await store.states(profiles: [name])[name]?.warnings ?? []
            message = "backend \(backend.rawValue): " + message
            if !warnings.isEmpty {
                return .warn(
                    message + "; " + warnings.joined(separator: "; "),
                    hint: "only the user rc-agent runs as should be able to read the secret", stored)
            }
            return .ok(message, stored)
        }

        /// No credentials where the backend looks, with the fix for that backend.
        static func missing(_ profile: String, _ backend: CredentialBackend) -> any RCAgentError {
            switch backend {
            case .secretService:
                return NotLoggedInError(profile: profile)
            case .keyctl:
                let key = CredentialBackend.keyctlKeyPrefix + profile
                return AgentError(
                    .notLoggedIn,
                    message: "no key \(key) in the kernel keyring (a reboot, or the persistent keyring's expiry "
                        + "after days unused, empties it)",
                    hint: "run `rc-agent login --profile \(profile) --backend keyctl`")
            case .env:
                return CredentialSourceError(
                    "profile '\(profile)' uses the environment but \(CredentialEnvironment.clientID) and "
                        + "\(CredentialEnvironment.secret) are not set",
                    hint: "export \(CredentialEnvironment.clientID), \(CredentialEnvironment.secret) (or "
                        + "\(CredentialEnvironment.secretFile)) and RC_AGENT_URL")
            case .file:
                return CredentialSourceError(
                    "profile '\(profile)' has no secret file", hint: "set client_secret_file in its config")
            }
        }
    }


    /// `tenant`: DNS (or the proxy), then TCP and TLS to the tenant's root.
    struct Tenant {
        let connect: @Sendable (Settings) throws -> any TenantRequesting
        let resolver: any HostResolving
        let clock: any AgentClock

        func run(_ profile: Profile) async throws -> Checked<Connection> {
            let tenant = profile.tenant
            let proxy = try ProxySettings.from(environment: profile.settings.environment)
            let client = try connect(profile.settings)
            var parts: [String] = []
            if let proxy, !proxy.bypasses(host: tenant.host) {
                parts.append("via the proxy \(proxy.host):\(proxy.port) (it resolves \(tenant.host))")
            } else {
                let start = clock.now()
                guard let addresses = await resolver.resolve(host: tenant.host), !addresses.isEmpty else {
                    try? await client.shutdown()
                    throw RiskCloudError(.dnsFailure(host: tenant.host), tenant: tenant.base, path: "")
                }
                parts.append("DNS \(tenant.host) → \(addresses.prefix(2).joined(separator: ", ")) "
                    + "(\(milliseconds(since: start, clock: clock)) ms)")
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
            } catch {
                try? await client.shutdown()
                throw error
            }
            let how = tenant.scheme == "https" ? "TCP and TLS" : "TCP (plain http, loopback)"
            parts.append("\(how) to \(tenant.base): HTTP \(status) in \(milliseconds(since: start, clock: clock)) ms")
            return .ok(parts.joined(separator: "; "), Connection(tenant: tenant, transport: client))
        }
    }

    /// `auth` (guide step 1): the token endpoint accepts the stored Client ID and Secret; a 401 is
    /// explained with the mistakes that can be seen locally.
    struct Auth {
        let clock: any AgentClock

        func run(_ profile: Profile, _ credential: StoredCredential, _ connection: Connection) async throws
            -> Checked<AccessToken>
        {
            do {
                let token = try await connection.transport.fetchToken(
                    tenant: connection.tenant, clientID: credential.clientID, secret: credential.secret)
                let days = Int(token.remaining(at: clock.now()) / 86_400)
                return .ok(
                    "POST /api/v1/account/token with Basic auth: the tenant accepted the Client ID and Secret "
                        + "(token valid for \(days) more day\(days == 1 ? "" : "s"))", token)
            } catch let error as RiskCloudError where error.kind == .credentialsRejected {
                let mistakes = CredentialHeuristics.detect(
                    clientID: credential.clientID, secret: credential.secret, tenant: connection.tenant,
                    storedURL: credential.url)
                let explained = error.explained(by: mistakes, profile: profile.settings.profile)
                return Checked(
                    status: .fail, message: explained.message, hint: explained.hint, exitStatus: error.exitStatus)
            }
        }
    }

    /// `records` (guide steps 2 and 3): the bearer token works on the least-privilege endpoint;
    /// a 401 gets one fresh token. The token `auth` just fetched is fresh too, so a 401 here means
    /// something replaced it (a warning when the next one works) or a permission problem; no
    /// records is a warning, as the tenant leaves out what the user cannot see. Hands on the token
    /// that worked.
    struct Records {
        let clock: any AgentClock

        func run(_ credential: StoredCredential, _ connection: Connection, _ token: AccessToken) async throws
            -> Checked<AccessToken>
        {
            let (tenant, transport) = (connection.tenant, connection.transport)
            var current = token
            var response = try await transport.bearerGET(tenant: tenant, path: recordsPath, token: current.value)
            var renewed = false
            if response.status == 401 {
                // The guide's step 2: a fresh bearer token, once.
                current = try await transport.fetchToken(
                    tenant: tenant, clientID: credential.clientID, secret: credential.secret)
                renewed = true
                response = try await transport.bearerGET(tenant: tenant, path: recordsPath, token: current.value)
            }
            try diagnose(response, tenant: tenant, path: recordsPath, token: current, now: clock.now(), freshToken: true)
            let total = try v2Page(response, tenant: tenant, path: recordsPath)
            let message = "GET \(recordsPath) with the bearer token: HTTP \(response.status)"
                + (total.map { ", \($0) record\($0 == 1 ? "" : "s") visible" } ?? "")
            if renewed {
                let note = RiskCloudError.tokenReplacedElsewhere
                return .warn(message + "; but " + note.message, hint: note.hint, current)
            }
            if total == 0 {
                let note = RiskCloudError.emptyListNote
                return .warn(message + "; " + note.message, hint: note.hint, current)
            }
            return .ok(message, current)
        }
    }

    /// `permissions` (guide step 4): a Build Access endpoint; a 403 there is a warning.
    struct Permissions {
        let clock: any AgentClock

        func run(_ connection: Connection, _ token: AccessToken) async throws -> Checked<Void> {
            let response = try await connection.transport.bearerGET(
                tenant: connection.tenant, path: applicationsPath, token: token.value)
            do {
                try diagnose(response, tenant: connection.tenant, path: applicationsPath, token: token, now: clock.now())
            } catch let error as RiskCloudError {
                if case .forbidden = error.kind { return .warn(error.message, hint: error.hint, ()) }
                throw error
            }
            return .ok("GET \(applicationsPath): HTTP \(response.status) (the user has Build Access)", ())
        }
    }

    /// `rotation`: the secret's age against the profile's policy; due or overdue is a warning.
    struct Rotation {
        let clock: any AgentClock

        func run(_ profile: Profile, _ credential: StoredCredential) -> Checked<Void> {
            let name = profile.settings.profile
            let status = RotationPolicy(config: profile.settings.config, profile: name)
                .status(created: credential.created, now: clock.now())
            if let reminder = status.reminder(profile: name) {
                return .warn(reminder, hint: RotationService.resetSecretStep, ())
            }
            return .ok(
                "the Client Secret is \(status.ageDays) day\(status.ageDays == 1 ? "" : "s") old; rotation due "
                    + "\(RotationStatus.day(status.dueAt)) (every \(status.rotateAfterDays) days)", ())
        }
    }

    /// `agent`: running, socket directory 0700 and socket 0600 owned by us, the peer check lets us
    /// in, and its token state for `profile`. Not running is a warning: commands start it on demand.
    struct Agent {
        /// Seconds the agent has to answer `/healthz`.
        static let livenessTimeout = 5.0
        /// Seconds its status may take: longer than a keyring call may (`keyring_timeout`, 30 s by default).
        static let statusTimeout = 40.0

        let input: DoctorRunner.Input

        func run(profile: String?, backend: CredentialBackend?) async -> Checked<Void> {
            let path = AgentSocket.path(flag: input.socketFlag, environment: input.environment)
            let probe = AgentSocket.probe(path)
            if backend == .env, probe != .live {
                return .ok(
                    "no agent needed: `token`, `exec` and `api` use the credentials from the environment in-process "
                        + "(no agent on \(path))", ())
            }
            switch probe {
            case .absent:
                let error = AgentError.unreachable(socket: path, detail: "no agent is running")
                return .warn(error.message + " (`rc-agent token` and `rc-agent api` start one on demand)", hint: error.hint, ())
            case .stale:
                let error = AgentError.unreachable(socket: path, detail: "a stale socket is left, nothing listens on it")
                return .warn(error.message, hint: error.hint, ())
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
            // Liveness first, then the status: the status waits for the agent's keyring (its list
            // of items), which a busy keyring can keep for many seconds while the agent itself
            // answers at once. A slow status is not "no agent answers".
            do {
                _ = try await AgentClient(socketPath: path, timeout: Self.livenessTimeout).send("GET", "/healthz")
            } catch let error as any RCAgentError {
                return .fail(error)
            } catch {
                return .fail(AgentError.unreachable(socket: path, detail: "\(error)"))
            }
            let status: AgentStatus
            do {
                status = try await AgentClient(socketPath: path, timeout: Self.statusTimeout).status()
            } catch let error as AgentError where error.code == .agentUnreachable {
                return .warn(
                    "the agent on \(path) answers, but its status took longer than \(Int(Self.statusTimeout)) s",
                    hint: "its keyring calls may be waiting (an unlock prompt?); run `rc-agent status` to see", ())
            } catch let error as any RCAgentError {
                return .fail(error)
            } catch {
                return .fail(AgentError.unreachable(socket: path, detail: "\(error)"))
            }
            var message = "agent pid \(status.pid) (\(status.version)) on \(path): directory 0700, socket "
                + "\(String(mode, radix: 8)), peer check accepts uid \(geteuid())"
            guard let profile, let entry = status.profiles.first(where: { $0.profile == profile }) else {
                return .ok(message, ())
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
                        + (last?.message ?? "unknown error"), hint: last?.hint, ())
            }
            if status.version != RCAgentVersion.current {
                return .warn(
                    message + "; it runs version \(status.version), this is \(RCAgentVersion.current)",
                    hint: "restart it: `rc-agent stop`, then `eval \"$(rc-agent start)\"`", ())
            }
            return .ok(message, ())
        }
    }

    /// Throws the diagnosis of a non-2xx answer to a bearer call.
    static func diagnose(
        _ response: UpstreamResponse, tenant: TenantURL, path: String, token: AccessToken, now: Date,
        freshToken: Bool = false
    ) throws {
        if let error = RiskCloudError.forResponse(
            status: response.status, headers: response.headers, body: response.body, tenant: tenant,
            path: TenantRequest.pathWithoutQuery(path), endpoint: .api, now: now, redacting: [token.value.reveal()],
            freshToken: freshToken)
        {
            throw error
        }
    }

    /// Checks that a 2xx body is a v2 page (`{content[], page{totalElements}}`); returns `totalElements`.
    static func v2Page(_ response: UpstreamResponse, tenant: TenantURL, path: String) throws -> Int? {
        guard let object = JSONValue(parsing: response.body), object["content"]?.array != nil else {
            let excerpt = ResponseExcerpt.make(response.body)
            throw RiskCloudError(
                .unexpectedResponse(
                    status: response.status, excerpt: "not a v2 page" + (excerpt.isEmpty ? "" : ": \(excerpt)")),
                tenant: tenant.base, path: TenantRequest.pathWithoutQuery(path))
        }
        return object["page"]?["totalElements"]?.int
    }

    static func milliseconds(since start: Date, clock: any AgentClock) -> Int {
        max(0, Int((clock.now().timeIntervalSince(start) * 1000).rounded()))
    }
}
