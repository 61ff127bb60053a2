import Foundation
import Synchronization

@testable import RCAgentCore

/// A clock the test moves by hand. `sleep` suspends until `advance` passes its deadline.
final class AgentTestClock: AgentClock {
    private struct Sleeper {
        let deadline: Date
        let continuation: CheckedContinuation<Void, any Error>
    }

    private struct State {
        var now: Date
        var sleepers: [Int: Sleeper] = [:]
        var cancelledBeforeRegistering: Set<Int> = []
        var nextID = 0
        var countWaiters: [(count: Int, continuation: CheckedContinuation<Void, Never>)] = []
    }

    private let state: Mutex<State>

    init(start: Date = Date(timeIntervalSince1970: 1_800_000_000)) {
        state = Mutex(State(now: start))
    }

    func now() -> Date { state.withLock { $0.now } }

    func sleep(seconds: Double) async throws {
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
    func advance(by seconds: Double) {
        let due = state.withLock { state -> [Sleeper] in
            state.now = state.now.addingTimeInterval(seconds)
            let now = state.now
            let ids = state.sleepers.filter { $0.value.deadline <= now }.map(\.key)
            return ids.compactMap { state.sleepers.removeValue(forKey: $0) }
        }
        for sleeper in due { sleeper.continuation.resume() }
    }

    /// Moves time to `date` (waking sleepers).
    func advance(to date: Date) { advance(by: date.timeIntervalSince(now())) }

    /// Suspends until at least `count` sleepers are waiting.
    func waitForSleepers(_ count: Int) async {
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            let ready = state.withLock { state -> Bool in
                if state.sleepers.count >= count { return true }
                state.countWaiters.append((count, continuation))
                return false
            }
            if ready { continuation.resume() }
        }
    }

    var sleeperCount: Int { state.withLock { $0.sleepers.count } }

    private static func takeSatisfiedWaiters(_ state: inout State) -> [CheckedContinuation<Void, Never>] {
        let count = state.sleepers.count
        let ready = state.countWaiters.filter { $0.count <= count }.map(\.continuation)
        state.countWaiters.removeAll { $0.count <= count }
        return ready
    }
}

/// A tenant failure as the token client would report it.
struct FakeTenantError: RCAgentError, UpstreamFailure {
    var code: String
    var upstreamStatus: Int?
    var isRetryable: Bool
    var retryAfterSeconds: Double?
    var message: String { "fake tenant failure \(code)" }
    var hint: String? { nil }
    var exitStatus: ExitStatus { code == "credentials_rejected" ? .credentialsRejected : .tenantUnreachable }

    static let unreachable = FakeTenantError(code: "tenant_unreachable", upstreamStatus: nil, isRetryable: true)
    static let rejected = FakeTenantError(code: "credentials_rejected", upstreamStatus: 401, isRetryable: false)
}

/// A token endpoint whose answers the test decides; counts calls and can hold them.
final class AgentFakeFetcher: TokenFetching {
    enum Behaviour: Sendable {
        /// A new token `tok-N` living `lifetime` seconds.
        case fresh(lifetime: Double)
        /// Always the same token, expiring at a fixed time (the tenant handing back its live token).
        case live(value: String, expiresAt: Date)
        case fail(FakeTenantError)
    }

    private struct State {
        var behaviour: Behaviour
        var calls = 0
        var holding = false
        var held: [CheckedContinuation<Void, Never>] = []
        var callWaiters: [(count: Int, continuation: CheckedContinuation<Void, Never>)] = []
    }

    private let clock: AgentTestClock
    private let state: Mutex<State>

    init(clock: AgentTestClock, behaviour: Behaviour = .fresh(lifetime: 3600)) {
        self.clock = clock
        state = Mutex(State(behaviour: behaviour))
    }

    var calls: Int { state.withLock { $0.calls } }

    func set(_ behaviour: Behaviour) { state.withLock { $0.behaviour = behaviour } }

    /// From now on calls wait until ``release()``.
    func hold() { state.withLock { $0.holding = true } }

    func release() {
        let held = state.withLock { state -> [CheckedContinuation<Void, Never>] in
            state.holding = false
            defer { state.held = [] }
            return state.held
        }
        for continuation in held { continuation.resume() }
    }

    /// Suspends until at least `count` calls have been made.
    func waitForCalls(_ count: Int) async {
        await withCheckedContinuation { (continuation: CheckedContinuation<Void, Never>) in
            let ready = state.withLock { state -> Bool in
                if state.calls >= count { return true }
                state.callWaiters.append((count, continuation))
                return false
            }
            if ready { continuation.resume() }
        }
    }

    func fetchToken(tenant: TenantURL, clientID: String, secret: Secret) async throws -> AccessToken {
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
final class AgentMemoryStore: CredentialStore {
    private let items: Mutex<[String: StoredCredential]>
    private let loadCount = Mutex(0)

    init(_ credentials: [StoredCredential] = []) {
        items = Mutex(Dictionary(credentials.map { ($0.profile, $0) }, uniquingKeysWith: { _, last in last }))
    }

    /// A store with one `default` profile pointing at `url`.
    static func withDefault(url: String = "http://127.0.0.1:1", clientID: String = "client-1", secret: String = "s3cret")
        -> AgentMemoryStore
    {
        AgentMemoryStore([
            StoredCredential(
                profile: "default", clientID: clientID, url: url, secret: Secret(secret), created: Date(timeIntervalSince1970: 0))
        ])
    }

    var loads: Int { loadCount.withLock { $0 } }

    func load(profile: String) async throws -> StoredCredential? {
        loadCount.withLock { $0 += 1 }
        return items.withLock { $0[profile] }
    }

    func save(_ credential: StoredCredential) async throws { items.withLock { $0[credential.profile] = credential } }

    func delete(profile: String) async throws -> Bool { items.withLock { $0.removeValue(forKey: profile) != nil } }

    func reconcile(profile: String) async throws -> Bool { false }

    func list() async throws -> [CredentialSummary] {
        items.withLock { items in
            items.values.sorted { $0.profile < $1.profile }.map {
                CredentialSummary(profile: $0.profile, clientID: $0.clientID, url: $0.url, created: $0.created, locked: false)
            }
        }
    }
}
