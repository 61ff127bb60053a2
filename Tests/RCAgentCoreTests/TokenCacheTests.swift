import Foundation
import Testing

@testable import RCAgentClient
@testable import RCAgentCore
@testable import RCAgentDaemon
@testable import RCAgentLive
import RCAgentTestSupport

/// The token cache driven by a test clock: no sleeps, no network, no keyring.
@Suite struct TokenCacheTests {
    let clock = AgentTestClock()
    let store = AgentMemoryStore.withDefault()
    let fetcher: AgentFakeFetcher
    let cache: TokenCache

    init() {
        fetcher = AgentFakeFetcher(clock: clock)
        // Jitter fixed at 0: the backoff is exactly half its exponential value.
        cache = TokenCache(store: store, fetcher: fetcher, clock: clock, jitter: { 0 })
    }

    @Test func twoHundredConcurrentColdRequestsCauseOneUpstreamCall() async throws {
        fetcher.hold()
        let values = try await withThrowingTaskGroup(of: String.self) { group in
            for _ in 0..<200 {
                group.addTask { try await cache.token(profile: "default").token.value.reveal() }
            }
            await fetcher.waitForCalls(1)
            for _ in 0..<100 { await Task.yield() }
            fetcher.release()
            return try await group.reduce(into: [String]()) { $0.append($1) }
        }
        #expect(values.count == 200)
        #expect(Set(values) == ["tok-1"])
        #expect(fetcher.calls == 1)
        #expect(store.loads == 1)
    }

    @Test func cachedTokenIsServedWithoutReadingTheKeyringAgain() async throws {
        let first = try await cache.token(profile: "default")
        for _ in 0..<50 {
            clock.advance(by: 10)
            #expect(try await cache.token(profile: "default") == first)
        }
        #expect(fetcher.calls == 1)
        #expect(store.loads == 1)
        let status = await cache.status()
        #expect(status.map(\.state) == [.valid])
        #expect(status.first?.clientID == "client-1")
    }

    @Test func minValidFetchesRatherThanHandOutAShortLivedToken() async throws {
        let first = try await cache.token(profile: "default", minValid: 60)
        clock.advance(by: 3600 - 100)  // 100 s left
        #expect(try await cache.token(profile: "default", minValid: 60) == first)
        #expect(fetcher.calls == 1)
        let second = try await cache.token(profile: "default", minValid: 120)
        #expect(fetcher.calls == 2)
        #expect(second.token.value.reveal() == "tok-2")
        #expect(second.token.remaining(at: clock.now()) >= 120)
    }

    @Test func refreshesAheadInTheBackground() async throws {
        await cache.startBackgroundRefresh()
        defer { Task { await cache.stopBackgroundRefresh() } }
        let start = clock.now()
        _ = try await cache.token(profile: "default")
        await clock.waitForSleepers(1)
        // 1 h token: lead = min(max(10 % of 3600, 300), 50 %) = 360 s.
        #expect(await cache.nextBackgroundRefresh(profile: "default") == start.addingTimeInterval(3240))
        clock.advance(by: 3239)
        #expect(fetcher.calls == 1)
        clock.advance(by: 1)
        await fetcher.waitForCalls(2)
        await clock.waitForSleepers(1)
        let refreshed = try await cache.token(profile: "default", minValid: 3000)
        #expect(refreshed.token.value.reveal() == "tok-2")
        #expect(fetcher.calls == 2)
    }

    @Test func shortLivedTokensAreRefreshedBeforeMinValidIsReachedWithoutALoop() async throws {
        fetcher.set(.fresh(lifetime: 4))
        await cache.startBackgroundRefresh()
        defer { Task { await cache.stopBackgroundRefresh() } }
        _ = try await cache.token(profile: "default", minValid: 1)
        // Step through 40 s in quarter seconds: every answer has ≥ 1 s left, and the tenant is asked
        // about once per 2 s (half the lifetime), not in a loop.
        for step in 1...160 {
            await clock.waitForSleepers(1)
            clock.advance(by: 0.25)
            if step % 8 == 0 { await fetcher.waitForCalls(1 + step / 8) }
            let served = try await cache.token(profile: "default", minValid: 1)
            #expect(served.token.remaining(at: clock.now()) >= 1)
        }
        #expect(fetcher.calls <= 22)
    }

    @Test func sameTokenFromTheTenantDoesNotCauseATightLoop() async throws {
        let start = clock.now()
        fetcher.set(.live(value: "live", expiresAt: start.addingTimeInterval(100)))
        await cache.startBackgroundRefresh()
        defer { Task { await cache.stopBackgroundRefresh() } }
        _ = try await cache.token(profile: "default", minValid: 60)
        await clock.waitForSleepers(1)
        // 100 s lifetime: refresh at 50 s before expiry (half the lifetime).
        #expect(await cache.nextBackgroundRefresh(profile: "default") == start.addingTimeInterval(50))
        clock.advance(by: 50)
        await fetcher.waitForCalls(2)
        await clock.waitForSleepers(1)
        // Same token back with 50 s left: wait half of that before asking again.
        #expect(await cache.nextBackgroundRefresh(profile: "default") == start.addingTimeInterval(75))
        // Callers who want 60 s get the live token (the best there is) without more upstream calls.
        for _ in 0..<20 {
            let served = try await cache.token(profile: "default", minValid: 60)
            #expect(served.token.value.reveal() == "live")
        }
        #expect(fetcher.calls == 2)
    }

    @Test func outageServesTheValidTokenThenAnswersWithTheDiagnosis() async throws {
        fetcher.set(.fresh(lifetime: 120))
        let first = try await cache.token(profile: "default")
        fetcher.set(.fail(.unreachable))
        clock.advance(by: 70)  // 50 s left, less than min_valid 60: try, fail, serve what is valid
        #expect(try await cache.token(profile: "default", minValid: 60) == first)
        #expect(fetcher.calls == 2)
        // Within the backoff nobody calls the tenant again.
        for _ in 0..<20 { #expect(try await cache.token(profile: "default", minValid: 60) == first) }
        #expect(fetcher.calls == 2)
        let failing = await cache.status().first
        #expect(failing?.state == .failing)
        #expect(failing?.lastError?.code.name == "tenant_unreachable")

        clock.advance(by: 60)  // expired
        await #expect(throws: FakeTenantError.self) { try await cache.token(profile: "default") }
        #expect(fetcher.calls == 3)

        fetcher.set(.fresh(lifetime: 120))
        clock.advance(by: 10)  // past the second backoff (1 s)
        let recovered = try await cache.token(profile: "default")
        #expect(recovered.token.value.reveal() == "tok-4")
        #expect(await cache.status().first?.state == .valid)
    }

    @Test func rejectedCredentialsStopAllRetriesUntilInvalidated() async throws {
        fetcher.set(.fail(.rejected))
        await cache.startBackgroundRefresh()
        defer { Task { await cache.stopBackgroundRefresh() } }
        for _ in 0..<100 {
            let error = await #expect(throws: FakeTenantError.self) { try await cache.token(profile: "default") }
            #expect(error?.code.name == "credentials_rejected")
        }
        clock.advance(by: 86_400)
        await #expect(throws: FakeTenantError.self) { try await cache.refresh(profile: "default") }
        #expect(fetcher.calls == 1)
        #expect(await cache.nextBackgroundRefresh(profile: "default") == nil)
        #expect(clock.sleeperCount == 0)
        #expect(await cache.status().first?.credentialsRejected == true)

        // After login/rotate the agent is told (DELETE /v1/token) and tries again.
        fetcher.set(.fresh(lifetime: 3600))
        await cache.invalidate(profile: "default")
        #expect(try await cache.token(profile: "default").token.value.reveal() == "tok-2")
        #expect(fetcher.calls == 2)
    }

    /// The fast path's snapshot follows the cache: published with a fetched token, answering only
    /// before refresh is due and with `min_valid` left, and gone the moment the token is forgotten
    /// or the tenant fails (outage backoff, 401 latch) — before the operation returns.
    @Test func theSnapshotIsPublishedAndWithdrawnWithTheCacheState() async throws {
        #expect(cache.snapshots.snapshot(profile: "default") == nil)
        let first = try await cache.token(profile: "default")
        let snapshot = try #require(cache.snapshots.snapshot(profile: "default"))
        #expect(snapshot.served == first)
        #expect(snapshot.serves(minValid: 60, at: clock.now()))
        #expect(!snapshot.serves(minValid: 3601, at: clock.now()))
        // Lifetime 3600 s: refresh ahead 6 min (10 %) before expiry.
        #expect(snapshot.refreshDue == first.token.expiresAt.addingTimeInterval(-360))
        #expect(!snapshot.serves(minValid: 0, at: snapshot.refreshDue))

        await cache.invalidate(profile: "default")
        #expect(cache.snapshots.snapshot(profile: "default") == nil, "DELETE /v1/token withdraws it")

        _ = try await cache.token(profile: "default")
        #expect(cache.snapshots.snapshot(profile: "default") != nil)
        fetcher.set(.fail(.unreachable))
        // The forced refresh fails; the held token is still valid, so it is the answer.
        _ = try await cache.refresh(profile: "default")
        #expect(fetcher.calls == 3)
        #expect(cache.snapshots.snapshot(profile: "default") == nil, "a failure state goes to the actor")

        fetcher.set(.fresh(lifetime: 3600))
        clock.advance(by: 10)  // past the backoff
        _ = try await cache.refresh(profile: "default")
        #expect(cache.snapshots.snapshot(profile: "default") != nil)
        fetcher.set(.fail(.rejected))
        clock.advance(by: 10)  // past the forced-refresh window
        await #expect(throws: FakeTenantError.self) { try await cache.refresh(profile: "default") }
        #expect(cache.snapshots.snapshot(profile: "default") == nil, "the 401 latch goes to the actor")
        await cache.resetFailures()
        #expect(cache.snapshots.snapshot(profile: "default") == nil, "a reload does not revive the latched token")
    }

    @Test func rejectedCredentialsAreRetriedAfterAReload() async throws {
        fetcher.set(.fail(.rejected))
        await #expect(throws: FakeTenantError.self) { try await cache.token(profile: "default") }
        await cache.resetFailures()
        fetcher.set(.fresh(lifetime: 3600))
        #expect(try await cache.token(profile: "default").token.value.reveal() == "tok-2")
    }

    @Test func backgroundRetryHonoursRetryAfter() async throws {
        await cache.startBackgroundRefresh()
        defer { Task { await cache.stopBackgroundRefresh() } }
        let start = clock.now()
        _ = try await cache.token(profile: "default")
        await clock.waitForSleepers(1)
        fetcher.set(.fail(FakeTenantError(code: .rateLimited, upstreamStatus: 429, isRetryable: true, retryAfterSeconds: 120)))
        clock.advance(to: start.addingTimeInterval(3240))
        await fetcher.waitForCalls(2)
        await clock.waitForSleepers(1)
        #expect(await cache.nextBackgroundRefresh(profile: "default") == start.addingTimeInterval(3240 + 120))
        clock.advance(by: 119)
        #expect(fetcher.calls == 2)
        // The cached token is still served during the outage.
        #expect(try await cache.token(profile: "default").token.value.reveal() == "tok-1")
        fetcher.set(.fresh(lifetime: 3600))
        clock.advance(by: 1)
        await fetcher.waitForCalls(3)
        await clock.waitForSleepers(1)
        #expect(try await cache.token(profile: "default").token.value.reveal() == "tok-3")
    }

    @Test func backoffGrowsExponentiallyWithJitterAndACap() {
        let policy = RefreshPolicy()
        #expect(policy.backoff(failures: 1, retryAfter: nil, retryable: true, jitter: 0) == 0.5)
        #expect(policy.backoff(failures: 1, retryAfter: nil, retryable: true, jitter: 0.999) < 1)
        #expect(policy.backoff(failures: 4, retryAfter: nil, retryable: true, jitter: 1) == 8)
        #expect(policy.backoff(failures: 30, retryAfter: nil, retryable: true, jitter: 1) == 300)
        #expect(policy.backoff(failures: 1, retryAfter: 90, retryable: true, jitter: 0) == 90)
        #expect(policy.backoff(failures: 1, retryAfter: 1e9, retryable: true, jitter: 0) == 3600)
        #expect(policy.backoff(failures: 1, retryAfter: nil, retryable: false, jitter: 1) == 300)
        #expect(policy.refreshLead(lifetime: 31_536_000) == 3_153_600)
        #expect(policy.refreshLead(lifetime: 3600) == 360)
        #expect(policy.refreshLead(lifetime: 1200) == 300)
        #expect(policy.refreshLead(lifetime: 4) == 2)
    }

    @Test func forcedRefreshesAreCoalesced() async throws {
        _ = try await cache.token(profile: "default")
        fetcher.hold()
        let values = try await withThrowingTaskGroup(of: String.self) { group in
            for _ in 0..<20 {
                group.addTask { try await cache.refresh(profile: "default").token.value.reveal() }
            }
            await fetcher.waitForCalls(2)
            for _ in 0..<50 { await Task.yield() }
            fetcher.release()
            return try await group.reduce(into: [String]()) { $0.append($1) }
        }
        #expect(Set(values) == ["tok-2"])
        #expect(fetcher.calls == 2)
        clock.advance(by: 3)
        #expect(try await cache.refresh(profile: "default").token.value.reveal() == "tok-2")
        #expect(fetcher.calls == 2)
        clock.advance(by: 3)
        #expect(try await cache.refresh(profile: "default").token.value.reveal() == "tok-3")
        #expect(fetcher.calls == 3)
    }

    @Test func missingCredentialsAreDiagnosedAndNotRetriedPerRequest() async throws {
        let empty = AgentMemoryStore()
        let cache = TokenCache(store: empty, fetcher: fetcher, clock: clock, jitter: { 0 })
        for _ in 0..<10 {
            await #expect(throws: NotLoggedInError.self) { try await cache.token(profile: "default") }
        }
        #expect(empty.loads == 1)
        #expect(fetcher.calls == 0)
    }
}
