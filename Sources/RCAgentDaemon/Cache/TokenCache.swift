import FoundationEssentials
import RCAgentCore
import Logging

/// A token together with what a caller needs to use it.
public struct ServedToken: Sendable, Equatable {
    public var profile: String
    public var token: AccessToken
    /// The tenant the token was issued by (where the credentials point).
    public var tenant: TenantURL
    /// When the secret that obtained it was first stored (the rotation clock), if known.
    public var secretCreated: Date? = nil
}

/// An error as the status reports it: never a secret or a token.
public struct ErrorSummary: Sendable, Equatable {
    public var code: ErrorCode
    public var message: String
    public var hint: String?
    public var upstreamStatus: Int?
    public var at: Date

    init(_ error: any RCAgentError, at: Date) {
        code = error.code
        message = error.message
        hint = error.hint
        upstreamStatus = (error as? UpstreamFailure)?.upstreamStatus
        self.at = at
    }
}

/// One profile's entry in ``TokenCache/status()``.
public struct ProfileTokenStatus: Sendable, Equatable {
    public var profile: String
    public var state: TokenState
    public var expiresAt: Date?
    public var tenant: TenantURL?
    public var clientID: String?
    public var lastError: ErrorSummary?
    /// When the last successful upstream call finished.
    public var lastRefresh: Date?
    /// True after a 401 at the token endpoint: no retries until the credentials change.
    public var credentialsRejected: Bool
    /// The store's ``CredentialStore/fingerprint(profile:)`` when the last fetch read the
    /// credentials (nil: the store has none, or nothing was fetched since the last invalidation).
    public var credentialFingerprint: Int? = nil
}

/// Per-profile bearer tokens in memory, fetched through a ``TokenFetching`` with credentials read
/// from a ``CredentialStore`` only when a fetch is needed (never per request).
///
/// - Single flight: concurrent requests for a profile share one upstream call and its result.
/// - `min_valid`: a request is answered from the cache only if the token has that long left;
///   otherwise it causes (or joins) a fetch. If the fetch cannot do better — the tenant is down,
///   or it handed back the live token — the caller gets the best still-valid token (its real
///   `expires_in` tells it so) and, once nothing valid is left, the diagnosis.
/// - Refresh ahead, backoff and the quiet period follow ``RefreshPolicy``; the background part
///   runs only between ``startBackgroundRefresh()`` and ``stopBackgroundRefresh()`` (the
///   agent's ``BackgroundRefreshService`` does that).
/// - A 401 from the token endpoint latches `credentials_rejected`: no upstream call for the
///   profile until ``invalidate(profile:)`` (after login/rotate, once the stored credentials
///   differ from ``rejectedCredential(profile:)``) or ``resetFailures()`` (reload).
///
/// This is the one place in rc-agent that retries token requests.
public actor TokenCache {
    private let store: any CredentialStore
    private let connections: any TenantConnections
    private let configuredURL: @Sendable (String) -> String?
    private let clock: any AgentClock
    private let policy: RefreshPolicy
    private let jitter: @Sendable () -> Double
    private let logger: Logger

    // Every change is published before the operation that made it returns (see TokenSnapshots).
    private var entries: [String: Entry] = [:] {
        didSet { publishSnapshots() }
    }
    /// What the socket server's fast path may answer without asking the actor.
    public nonisolated let snapshots = TokenSnapshots()
    private var backgroundEnabled = false
    private var timerSerial = 0

    private struct Entry {
        var generation = 0
        var token: AccessToken?
        var tenant: TenantURL?
        var clientID: String?
        var secretCreated: Date?
        /// Observed lifetime of `token` (see ``RefreshPolicy``).
        var lifetime: Double = 0
        var lastFetchReturnedSameToken = false
        var inflight: Task<Void, Never>?
        var inflightStartedAt: Date?
        var lastForcedStart: Date?
        var lastAttemptEnded: Date?
        var lastSuccess: Date?
        var lastError: (any RCAgentError)?
        var lastErrorAt: Date?
        var failures = 0
        var rejected = false
        /// The credentials' fingerprint as the last fetch read them.
        var fingerprint: Int?
        /// The credentials the tenant refused when `rejected` was set (nil when they could not be read).
        var rejectedCredential: CredentialFingerprint?
        /// No request-driven upstream call before this time.
        var notBefore: Date?
        /// True when `notBefore` is a failure backoff (forced refreshes respect it too).
        var notBeforeIsBackoff = false
        var timer: Task<Void, Never>?
        var timerSerial = 0
    }

    /// - Parameters:
    ///   - jitter: random numbers in `0..<1` for the backoff jitter.
    ///   - connections: each profile's token endpoint client.
    ///   - configuredURL: the profile's `url` in the config, if it names one: stored credentials
    ///     for another URL are refused (``StoredURLMismatch``) before anything is sent.
    public init(
        store: any CredentialStore, connections: any TenantConnections, clock: any AgentClock,
        policy: RefreshPolicy = RefreshPolicy(), jitter: @escaping @Sendable () -> Double = { Double.random(in: 0..<1) },
        configuredURL: @escaping @Sendable (String) -> String? = { _ in nil },
        logger: Logger = Logger(label: "rc-agent.cache")
    ) {
        self.store = store
        self.connections = connections
        self.configuredURL = configuredURL
        self.clock = clock
        self.policy = policy
        self.jitter = jitter
        self.logger = logger
    }

    /// A cache that fetches every profile's tokens through `fetcher`.
    public init(
        store: any CredentialStore, fetcher: any TokenFetching, clock: any AgentClock,
        policy: RefreshPolicy = RefreshPolicy(), jitter: @escaping @Sendable () -> Double = { Double.random(in: 0..<1) },
        configuredURL: @escaping @Sendable (String) -> String? = { _ in nil },
        logger: Logger = Logger(label: "rc-agent.cache")
    ) {
        self.init(
            store: store, connections: SharedTenantConnections(fetcher: fetcher), clock: clock, policy: policy,
            jitter: jitter, configuredURL: configuredURL, logger: logger)
    }

    // MARK: Requests

    /// A token for `profile` with at least `minValid` seconds left (see the type's notes when that
    /// cannot be had). Throws the diagnosis (``KeyringError``, ``NotLoggedInError``, the token
    /// client's error) when no valid token can be served.
    public func token(profile: String, minValid: Double = 60) async throws -> ServedToken {
        try await obtain(profile, minValid: minValid, forced: false)
    }

    /// A token fetched from the tenant now — for a caller whose token was just refused downstream.
    /// Forced refreshes within ``RefreshPolicy/forcedRefreshWindow`` of each other share one call.
    public func refresh(profile: String) async throws -> ServedToken {
        try await obtain(profile, minValid: 0, forced: true)
    }

    /// The credentials the tenant refused for `profile`, while the `credentials_rejected` latch is set.
    public func rejectedCredential(profile: String) -> CredentialFingerprint? {
        guard let entry = entries[profile], entry.rejected else { return nil }
        return entry.rejectedCredential
    }

    /// Forgets everything about `profile`: its token, errors, backoff and the
    /// `credentials_rejected` latch. A fetch in flight finishes but its result is dropped.
    public func invalidate(profile: String) {
        guard let entry = entries[profile] else { return }
        entry.timer?.cancel()
        entries[profile] = Entry(generation: entry.generation + 1)
        logger.info("token forgotten", metadata: ["profile": "\(profile)"])
    }

    /// Clears every backoff and `credentials_rejected` latch (config reload): the next request
    /// or the background refresh asks the tenant again. Tokens are kept.
    public func resetFailures() {
        for profile in entries.keys {
            guard var entry = entries[profile], entry.lastError != nil || entry.rejected else { continue }
            entry.rejected = false
            entry.failures = 0
            entry.notBefore = nil
            entries[profile] = entry
            scheduleTimer(profile)
        }
    }

    /// What the agent knows about each profile it has been asked for, sorted by name.
    public func status() -> [ProfileTokenStatus] {
        let now = clock.now()
        return entries.keys.sorted().compactMap { profile in
            guard let entry = entries[profile] else { return nil }
            let state: TokenState
            if entry.inflight != nil {
                state = .refreshing
            } else if entry.lastError != nil {
                state = .failing
            } else if let token = entry.token, token.remaining(at: now) > 0 {
                state = .valid
            } else {
                state = .none
            }
            return ProfileTokenStatus(
                profile: profile, state: state, expiresAt: entry.token?.expiresAt, tenant: entry.tenant,
                clientID: entry.clientID,
                lastError: entry.lastError.map { ErrorSummary($0, at: entry.lastErrorAt ?? now) },
                lastRefresh: entry.lastSuccess, credentialsRejected: entry.rejected,
                credentialFingerprint: entry.fingerprint)
        }
    }

    // MARK: Background refresh

    /// Starts refreshing held tokens ahead of expiry and retrying failures in the background.
    public func startBackgroundRefresh() {
        backgroundEnabled = true
        for profile in entries.keys { scheduleTimer(profile) }
    }

    /// Stops all background work (fetches in flight finish).
    public func stopBackgroundRefresh() {
        backgroundEnabled = false
        for profile in entries.keys {
            entries[profile]?.timer?.cancel()
            entries[profile]?.timer = nil
        }
    }

    /// When the background refresh will next ask the tenant for `profile`, if it will.
    public func nextBackgroundRefresh(profile: String) -> Date? {
        guard backgroundEnabled, let entry = entries[profile], entry.timer != nil else { return nil }
        return nextBackgroundAttempt(entry)
    }

    // MARK: Internals

    private func obtain(_ profile: String, minValid: Double, forced: Bool) async throws -> ServedToken {
        var waited = false
        // Each pass either answers or waits for one fetch; a pass repeats only when the profile
        // was invalidated while we waited.
        for _ in 0..<3 {
            let now = clock.now()
            let entry = entries[profile] ?? Entry()
            if entry.rejected, let error = entry.lastError {
                if !forced, let served = usable(profile, entry, now, minValid: 0) { return served }
                throw error
            }
            if waited {
                if let served = usable(profile, entry, now, minValid: 0) { return served }
                if let error = entry.lastError { throw error }
            } else if forced {
                if entry.inflight == nil, let start = entry.lastForcedStart,
                    now.timeIntervalSince(start) < policy.forcedRefreshWindow
                {
                    if let served = usable(profile, entry, now, minValid: 0) { return served }
                    if let error = entry.lastError { throw error }
                }
            } else if let served = usable(profile, entry, now, minValid: minValid) {
                return served
            }

            if entry.inflight == nil {
                if let notBefore = entry.notBefore, now < notBefore, !forced || entry.notBeforeIsBackoff,
                    let answer = bestAnswer(profile, entry, now)
                {
                    return try answer.get()
                }
                startFetch(profile)
            }
            if forced {
                let started = entries[profile]?.inflightStartedAt ?? now
                entries[profile]?.lastForcedStart = started
            }
            guard let task = entries[profile]?.inflight else { continue }
            await task.value
            waited = true
        }
        throw entries[profile]?.lastError
            ?? AgentError(.agentBusy, message: "the profile '\(profile)' kept changing; try again")
    }

    /// The held token if it has at least `minValid` (and more than 0) seconds left.
    private func usable(_ profile: String, _ entry: Entry, _ now: Date, minValid: Double) -> ServedToken? {
        guard let served = held(profile, entry) else { return nil }
        let remaining = served.token.remaining(at: now)
        guard remaining > 0, remaining >= minValid else { return nil }
        return served
    }

    /// The held token as it is served, whatever its remaining life.
    private func held(_ profile: String, _ entry: Entry) -> ServedToken? {
        guard let token = entry.token, let tenant = entry.tenant else { return nil }
        return ServedToken(profile: profile, token: token, tenant: tenant, secretCreated: entry.secretCreated)
    }

    /// While upstream calls are held back: a still-valid token, else the last error, else nil.
    private func bestAnswer(_ profile: String, _ entry: Entry, _ now: Date) -> Result<ServedToken, any Error>? {
        if let served = usable(profile, entry, now, minValid: 0) { return .success(served) }
        if let error = entry.lastError { return .failure(error) }
        return nil
    }

    private func startFetch(_ profile: String) {
        var entry = entries[profile] ?? Entry()
        let started = clock.now()
        let generation = entry.generation
        entry.inflightStartedAt = started
        entry.timer?.cancel()
        entry.timer = nil
        entry.inflight = Task { await self.fetch(profile, generation: generation) }
        entries[profile] = entry
    }

    private func fetch(_ profile: String, generation: Int) async {
        let result: Result<(AccessToken, TenantURL, StoredCredential), any Error>
        // Taken before the read: a change after it shows as a difference on the next check.
        let fingerprint = await store.fingerprint(profile: profile)
        var used: StoredCredential?
        do {
            guard let credential = try await store.load(profile: profile) else {
                throw NotLoggedInError(profile: profile)
            }
            used = credential
            if let mismatch = StoredURLMismatch(credential, configured: configuredURL(profile)) { throw mismatch }
            let tenant = try TenantURL(parsing: credential.url)
            let token = try await connections.tokenFetcher(profile: profile)
                .fetchToken(tenant: tenant, clientID: credential.clientID, secret: credential.secret)
            result = .success((token, tenant, credential))
        } catch {
            result = .failure(error)
        }
        guard var entry = entries[profile], entry.generation == generation else { return }
        let now = clock.now()
        entry.inflight = nil
        entry.inflightStartedAt = nil
        entry.lastAttemptEnded = now
        entry.fingerprint = fingerprint
        switch result {
        case .success(let (token, tenant, credential)):
            recordSuccess(token, tenant: tenant, credential: credential, in: &entry, profile: profile, now: now)
        case .failure(let error):
            recordFailure(error, in: &entry, profile: profile, now: now)
            entry.rejectedCredential = entry.rejected ? used.map(CredentialFingerprint.init) : nil
        }
        entries[profile] = entry
        scheduleTimer(profile)
    }

    private func recordSuccess(
        _ token: AccessToken, tenant: TenantURL, credential: StoredCredential, in entry: inout Entry, profile: String,
        now: Date
    ) {
        let same = entry.token?.value == token.value
        if !same { entry.lifetime = max(0, token.expiresAt.timeIntervalSince(token.obtainedAt)) }
        entry.token = token
        entry.tenant = tenant
        entry.clientID = credential.clientID
        entry.secretCreated = credential.created
        entry.lastFetchReturnedSameToken = same
        entry.lastSuccess = now
        entry.lastError = nil
        entry.lastErrorAt = nil
        entry.failures = 0
        entry.rejected = false
        let pause = same
            ? policy.sameTokenPause(remaining: token.remaining(at: now), lifetime: entry.lifetime)
            : policy.quietPeriod(lifetime: entry.lifetime)
        entry.notBefore = now.addingTimeInterval(pause)
        entry.notBeforeIsBackoff = false
        logger.info(
            "token fetched",
            metadata: [
                "profile": "\(profile)", "expires_in": "\(Int(token.remaining(at: now)))",
                "same_token": "\(same)",
            ])
    }

    /// A 401 at the token endpoint latches `credentials_rejected`; anything else backs off.
    private func recordFailure(_ error: any Error, in entry: inout Entry, profile: String, now: Date) {
        let agentError = error as? any RCAgentError ?? TokenFetchFailure(detail: String(describing: type(of: error)))
        let upstream = error as? UpstreamFailure
        entry.lastError = agentError
        entry.lastErrorAt = now
        entry.failures += 1
        if upstream?.upstreamStatus == 401 || agentError.code == .credentialsRejected {
            entry.rejected = true
            entry.notBefore = nil
            logger.warning(
                "credentials rejected by the tenant; not retrying until they change",
                metadata: ["profile": "\(profile)"])
        } else {
            let delay = policy.backoff(
                failures: entry.failures, retryAfter: upstream?.retryAfterSeconds,
                retryable: upstream?.isRetryable ?? true, jitter: jitter())
            entry.notBefore = now.addingTimeInterval(delay)
            entry.notBeforeIsBackoff = true
            logger.warning(
                "token request failed",
                metadata: [
                    "profile": "\(profile)", "code": "\(agentError.code)", "error": "\(agentError.message)",
                    "failures": "\(entry.failures)", "retry_in": "\(CFormat.oneDecimal(delay))",
                ])
        }
    }

    /// The fast path's view of every profile: a snapshot only for a held token with no failure state.
    private func publishSnapshots() {
        var fresh: [String: TokenSnapshot] = [:]
        for (profile, entry) in entries {
            guard let served = held(profile, entry), entry.lastError == nil, !entry.rejected else { continue }
            let expiresAt = served.token.expiresAt
            let refreshDue = entry.lastFetchReturnedSameToken
                ? min(entry.notBefore ?? expiresAt, expiresAt)
                : expiresAt.addingTimeInterval(-policy.refreshLead(lifetime: entry.lifetime))
            fresh[profile] = TokenSnapshot(served: served, refreshDue: refreshDue)
        }
        snapshots.publish(fresh)
    }

    /// When the background should next call the tenant for `entry`, or nil for never.
    private func nextBackgroundAttempt(_ entry: Entry) -> Date? {
        guard let token = entry.token, !entry.rejected else { return nil }
        let due: Date
        if entry.lastError != nil {
            // Outage: keep trying (with backoff) while a token is held, and after it expired.
            return entry.notBefore ?? clock.now()
        } else if entry.lastFetchReturnedSameToken {
            due = min(entry.notBefore ?? token.expiresAt, token.expiresAt)
        } else {
            due = token.expiresAt.addingTimeInterval(-policy.refreshLead(lifetime: entry.lifetime))
        }
        // Never two successful calls closer than the quiet period: no tight loop whatever the tenant says.
        guard let last = entry.lastAttemptEnded else { return due }
        return max(due, last.addingTimeInterval(policy.quietPeriod(lifetime: entry.lifetime)))
    }

    private func scheduleTimer(_ profile: String) {
        guard var entry = entries[profile] else { return }
        entry.timer?.cancel()
        entry.timer = nil
        if backgroundEnabled, entry.inflight == nil, let due = nextBackgroundAttempt(entry) {
            let delay = max(0, due.timeIntervalSince(clock.now()))
            timerSerial += 1
            let serial = timerSerial
            entry.timerSerial = serial
            entry.timer = Task { [clock] in
                do { try await clock.sleep(seconds: delay) } catch { return }
                self.timerFired(profile, serial: serial)
            }
        }
        entries[profile] = entry
    }

    private func timerFired(_ profile: String, serial: Int) {
        guard backgroundEnabled, let entry = entries[profile], entry.timerSerial == serial, entry.timer != nil else {
            return
        }
        entries[profile]?.timer = nil
        if entry.inflight == nil {
            logger.debug("background refresh", metadata: ["profile": "\(profile)"])
            startFetch(profile)
        }
    }
}
