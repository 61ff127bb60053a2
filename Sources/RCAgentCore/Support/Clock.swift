import FoundationEssentials

/// Wall-clock time and sleeping, the I/O edge that token expiry and backoff depend on.
///
/// Production uses ``SystemClock``; tests pass a clock they advance by hand, so no test sleeps.
public protocol AgentClock: Sendable {
    /// The current time.
    func now() -> Date
    /// Suspends for `seconds` (or until cancelled, throwing `CancellationError`).
    func sleep(seconds: Double) async throws
}

/// The real clock.
public struct SystemClock: AgentClock {
    public init() {}
    public func now() -> Date { Date() }
    public func sleep(seconds: Double) async throws {
        try await Task.sleep(nanoseconds: UInt64(max(0, seconds) * 1_000_000_000))
    }
}
