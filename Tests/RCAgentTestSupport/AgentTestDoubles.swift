import Foundation
import Synchronization

import RCAgentCore

/// A clock the test moves by hand. `sleep` suspends until `advance` passes its deadline.
package final class AgentTestClock: AgentClock {
    private struct Sleeper {
        package let deadline: Date
        package let continuation: CheckedContinuation<Void, any Error>
    }

    private struct State {
        package var now: Date
        package var sleepers: [Int: Sleeper] = [:]
        package var cancelledBeforeRegistering: Set<Int> = []
        package var nextID = 0
        package var countWaiters: [(count: Int, continuation: CheckedContinuation<Void, Never>)] = []
    }

    private let state: Mutex<State>

    package init(start: Date = Date(timeIntervalSince1970: 1_800_000_000)) {
        state = Mutex(State(now: start))
    }

    package func now() -> Date { state.withLock { $0.now } }

    package func sleep(seconds: Double) async throws {
        let id = state.withLock { state -> Int in
            state.nextID += 1
            return state.nextID
        }
        try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Void, any Error>) in
                let (resumeNow, cancelled, waiters) = state.withLock { state -> (Bool, Bool, [CheckedContinuation<Void, Never>]) in
                    if state.cancelledBeforeRegistering.remove(id) != nil { return (false, true, []) }
                    let deadline = state.now.addingTimeInterval(max(0, seconds))
                    if deadline <= state.now { return (true, false, []) }
                    state.sleepers[id] = Sleeper(deadline: deadline, continuation: continuation)
                    return (false, false, Self.takeSatisfiedWaiters(&state))
                }
                if cancelled {
                    continuation.resume(throwing: CancellationError())
                } else if resumeNow {
                    continuation.resume()
                }
                for waiter in waiters { waiter.resume() }
            }
        } onCancel: {
            let sleeper = state.withLock { state -> Sleeper? in
                if let sleeper = state.sleepers.removeValue(forKey: id) { return sleeper }
                state.cancelledBeforeRegistering.insert(id)
                return nil
            }
            sleeper?.continuation.resume(throwing: CancellationError())
        }
    }

    /// Moves time forward and wakes every sleeper whose deadline has come.
    package func advance(by seconds: Double) {
        let due = state.withLock { state -> [Sleeper] in
            state.now = state.now.addingTimeInterval(seconds)
            let now = state.now
            let ids = state.sleepers.filter { $0.value.deadline <= now }.map(\.key)
            return ids.compactMap { state.sleepers.removeValue(forKey: $0) }
        }
        for sleeper in due { sleeper.continuation.resume() }
    }

    /// Moves time to `date` (waking sleepers).
    package func advance(to date: Date) { advance(by: date.timeIntervalSince(now())) }

    /// Suspends until at least `count` sleepers are waiting.
    package func waitForSleepers(_ count: Int) async {
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            let ready = state.withLock { state -> Bool in
                if state.sleepers.count >= count { return true }
                state.countWaiters.append((count, continuation))
                return false
            }
            if ready { continuation.resume() }
        }
    }

    package var sleeperCount: Int { state.withLock { $0.sleepers.count } }

    private static func takeSatisfiedWaiters(_ state: inout State) -> [CheckedContinuation<Void, Never>] {
        let count = state.sleepers.count
        let ready = state.countWaiters.filter { $0.count <= count }.map(\.continuation)
        state.countWaiters.removeAll { $0.count <= count }
        return ready
    }
}

/// A tenant failure as the token client would report it.
package struct FakeTenantError: RCAgentError, UpstreamFailure {
    package var code: ErrorCode
    package var upstreamStatus: Int?
    package var isRetryable: Bool
    package var retryAfterSeconds: Double?
    package var message: String { "fake tenant failure \(code)" }
    package var hint: String? { nil }

    package init(code: ErrorCode, upstreamStatus: Int?, isRetryable: Bool, retryAfterSeconds: Double? = nil) {
        self.code = code
        self.upstreamStatus = upstreamStatus
        self.isRetryable = isRetryable
        self.retryAfterSeconds = retryAfterSeconds
    }

    package static let unreachable = FakeTenantError(code: .tenantUnreachable, upstreamStatus: nil, isRetryable: true)
    package static let rejected = FakeTenantError(code: .credentialsRejected, upstreamStatus: 401, isRetryable: false)
}

/// A token endpoint whose answers the test decides; counts calls and can hold them.
package final class AgentFakeFetcher: TokenFetching {
    package enum Behaviour: Sendable {
        /// A new token `tok-N` living `lifetime` seconds.
        case fresh(lifetime: Double)
        /// Always the same token, expiring at a fixed time (the tenant handing back its live token).
        case live(value: String, expiresAt: Date)
        case fail(FakeTenantError)
    }

    private struct State {
        package var behaviour: Behaviour
        package var calls = 0
        package var holding = false
        package var held: [CheckedContinuation<Void, Never>] = []
        package var callWaiters: [(count: Int, continuation: CheckedContinuation<Void, Never>)] = []
    }

    private let clock: AgentTestClock
    private let state: Mutex<State>

    package init(clock: AgentTestClock, behaviour: Behaviour = .fresh(lifetime: 3600)) {
        self.clock = clock
        state = Mutex(State(behaviour: behaviour))
    }

    package var calls: Int { state.withLock { $0.calls } }

    package func set(_ behaviour: Behaviour) { state.withLock { $0.behaviour = behaviour } }

    /// From now on calls wait until ``release()``.
    package func hold() { state.withLock { $0.holding = true } }

    package func release() {
        let held = state.withLock { state -> [CheckedContinuation<Void, Never>] in
            state.holding = false
            defer { state.held = [] }
            return state.held
        }
        for continuation in held { continuation.resume() }
    }

    /// Suspends until at least `count` calls have been made.
    package func waitForCalls(_ count: Int) async {
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            let ready = state.withLock { state -> Bool in
                if state.calls >= count { return true }
                state.callWaiters.append((count, continuation))
                return false
            }
            if ready { continuation.resume() }
        }
    }

    package func fetchToken(tenant: TenantURL, clientID: String, secret: Secret) async throws -> AccessToken {
        let sent = clock.now()
        let (number, waiters) = state.withLock { state -> (Int, [CheckedContinuation<Void, Never>]) in
            state.calls += 1
            let ready = state.callWaiters.filter { $0.count <= state.calls }.map(\.continuation)
            state.callWaiters.removeAll { $0.count <= state.calls }
            return (state.calls, ready)
        }
        for waiter in waiters { waiter.resume() }
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            let wait = state.withLock { state -> Bool in
                if state.holding { state.held.append(continuation) }
                return state.holding
            }
            if !wait { continuation.resume() }
        }
        switch state.withLock({ $0.behaviour }) {
        case .fresh(let lifetime):
            return AccessToken(
                value: Secret("tok-\(number)"), tokenType: "bearer", expiresAt: sent.addingTimeInterval(lifetime),
                scope: nil, obtainedAt: sent)
        case .live(let value, let expiresAt):
            return AccessToken(value: Secret(value), tokenType: "bearer", expiresAt: expiresAt, scope: nil, obtainedAt: sent)
        case .fail(let error):
            throw error
        }
    }
}

/// Credentials in memory; counts reads.
package final class AgentMemoryStore: CredentialStore {
    private let items: Mutex<[String: StoredCredential]>
    private let loadCount = Mutex(0)

    package init(_ credentials: [StoredCredential] = []) {
        items = Mutex(Dictionary(credentials.map { ($0.profile, $0) }, uniquingKeysWith: { _, last in last }))
    }

    /// A store with one `default` profile pointing at `url`.
    package static func withDefault(url: String = "http://127.0.0.1:1", clientID: String = "client-1", secret: String = "s3cret")
        -> AgentMemoryStore
    {
        AgentMemoryStore([
            StoredCredential(
                profile: "default", clientID: clientID, url: url, secret: Secret(secret), created: Date(timeIntervalSince1970: 0))
        ])
    }

    package var loads: Int { loadCount.withLock { $0 } }

    package func load(profile: String) async throws -> StoredCredential? {
        loadCount.withLock { $0 += 1 }
        return items.withLock { $0[profile] }
    }

    /// Like a keyring, records when the item was written.
    package func save(_ credential: StoredCredential) async throws {
        var stored = credential
        stored.storedAt = Date()
        items.withLock { $0[credential.profile] = stored }
    }

    package func delete(profile: String) async throws -> Bool { items.withLock { $0.removeValue(forKey: profile) != nil } }

    package func reconcile(profile: String) async throws -> Bool { false }

    package func list() async throws -> [CredentialSummary] {
        items.withLock { items in
            items.values.sorted { $0.profile < $1.profile }.map {
                CredentialSummary(profile: $0.profile, clientID: $0.clientID, url: $0.url, created: $0.created, locked: false)
            }
        }
    }
}

/// A store whose `list()` takes `seconds` (a keyring that is busy or waits on an unlock prompt);
/// everything else is `inner`'s.
package struct SlowListStore: CredentialStore {
    package let inner: any CredentialStore
    package let seconds: Double

    package init(_ inner: any CredentialStore, seconds: Double) {
        self.inner = inner
        self.seconds = seconds
    }

    package func load(profile: String) async throws -> StoredCredential? { try await inner.load(profile: profile) }
    package func save(_ credential: StoredCredential) async throws { try await inner.save(credential) }
    package func delete(profile: String) async throws -> Bool { try await inner.delete(profile: profile) }
    package func reconcile(profile: String) async throws -> Bool { try await inner.reconcile(profile: profile) }
    package func list() async throws -> [CredentialSummary] {
        try await Task.sleep(nanoseconds: UInt64(seconds * 1_000_000_000))
        return try await inner.list()
    }
}
