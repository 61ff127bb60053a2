import RCAgentCore
import FoundationEssentials
import Glibc

/// When ``TokenCache`` refreshes, how it backs off, and how it coalesces forced refreshes.
///
/// Terms: a token's *observed lifetime* `L` is its `expires_in` the first time the agent saw that
/// token value (the tenant may hand back its live token later with a smaller `expires_in`; that
/// does not shorten `L`).
///
/// - **Refresh ahead**: at `expires_at − lead`, where
///   `lead = min(max(10 % of L, 5 min), 50 % of L)` — i.e. at 90 % of the lifetime or 5 min
///   before expiry, whichever is sooner, but never in the first half of the lifetime (so a
///   token that lives only a few seconds is not refreshed in a loop).
/// - **Same token back**: when a refresh returns the token already held, the tenant is
///   re-issuing its live token. The next try waits half the remaining lifetime (at least the
///   quiet period, at most 6 h), and never later than the expiry itself.
/// - **Quiet period**: after any upstream call, no further call for
///   `clamp(10 % of L, 1 s, 30 s)` unless it is a forced refresh — a caller whose `min_valid`
///   cannot be met gets the best valid token instead of causing a call per request.
/// - **Backoff** after a failure: `base · 2^(n−1)` capped at `maximumBackoff`, with "equal
///   jitter" (a random 50–100 % of that), and never shorter than the tenant's `Retry-After`
///   (itself capped at `maximumRetryAfter`). Errors marked not retryable wait `maximumBackoff`.
///   A 401 stops retrying altogether until the credentials change.
/// - **Forced refreshes** within `forcedRefreshWindow` of the start of the previous forced
///   upstream call share its result.
public struct RefreshPolicy: Sendable, Equatable {
    /// Fraction of the lifetime to refresh ahead (0.1: at 90 %).
    public var leadFraction: Double = 0.1
    /// Refresh at least this long before expiry (seconds).
    public var minimumLead: Double = 300
    /// Never refresh earlier than this fraction of the lifetime before expiry.
    public var maximumLeadFraction: Double = 0.5
    /// First backoff delay (seconds).
    public var backoffBase: Double = 1
    /// Longest backoff delay (seconds).
    public var maximumBackoff: Double = 300
    /// Longest `Retry-After` honoured (seconds).
    public var maximumRetryAfter: Double = 3600
    /// Forced refreshes this close together (seconds) share one upstream call.
    public var forcedRefreshWindow: Double = 5
    /// Bounds of the quiet period after an upstream call (seconds).
    public var quietMinimum: Double = 1
    public var quietMaximum: Double = 30
    /// Longest wait between tries while the tenant keeps returning the same token (seconds).
    public var sameTokenMaximumPause: Double = 6 * 3600

    public init() {}

    /// Seconds before expiry at which a token of observed lifetime `lifetime` is refreshed.
    public func refreshLead(lifetime: Double) -> Double {
        min(max(leadFraction * lifetime, minimumLead), maximumLeadFraction * lifetime)
    }

    /// Seconds after an upstream call during which requests do not cause another one.
    public func quietPeriod(lifetime: Double) -> Double {
        min(max(leadFraction * lifetime, quietMinimum), quietMaximum)
    }

    /// Seconds to wait before asking again after the tenant returned the token already held.
    public func sameTokenPause(remaining: Double, lifetime: Double) -> Double {
        min(max(remaining / 2, quietPeriod(lifetime: lifetime)), sameTokenMaximumPause)
    }

    /// Seconds to wait after the `failures`-th consecutive failure.
    /// - Parameter jitter: a random number in `0..<1`.
    public func backoff(failures: Int, retryAfter: Double?, retryable: Bool, jitter: Double) -> Double {
        let exponential = retryable
            ? min(maximumBackoff, backoffBase * pow(2, Double(max(0, failures - 1)))) : maximumBackoff
        let delay = exponential * (0.5 + 0.5 * min(max(jitter, 0), 1))
        guard let retryAfter, retryAfter > 0 else { return delay }
        return max(delay, min(retryAfter, maximumRetryAfter))
    }
}
