import FoundationEssentials
import RCAgentCore
import Synchronization

/// What ``TokenCache`` would answer for one profile from memory, frozen when its state last
/// changed: the socket server's fast path (``TokenFastPathHandler``) reads it on the event loop
/// without asking the actor.
///
/// A profile has a snapshot only while it holds a token and has no failure state (no error since
/// the last success, no `credentials_rejected` latch); everything else goes to the actor.
public struct TokenSnapshot: Sendable, Equatable {
    /// The token as ``TokenCache/token(profile:minValid:)`` would serve it.
    public let served: ServedToken
    /// From this time on the cache wants a new token (refresh ahead, or the next try after the
    /// tenant handed back its live token): requests go to the actor again.
    public var refreshDue: Date
    /// `served`'s expiry as the answers write it (`expires_at`), and its tenant's base URL (`url`):
    /// made once when the snapshot is published, not for each answer.
    let expiresAtText: String
    let tenantBase: String

    init(served: ServedToken, refreshDue: Date) {
        self.served = served
        self.refreshDue = refreshDue
        expiresAtText = WireJSON.rfc3339(served.token.expiresAt)
        tenantBase = served.tenant.base
    }

    /// True when a request needing `minValid` seconds may be answered from this snapshot at `now`.
    public func serves(minValid: Double, at now: Date) -> Bool {
        let remaining = served.token.remaining(at: now)
        return remaining > 0 && remaining >= minValid && now < refreshDue
    }
}

/// The latest ``TokenSnapshot`` of every profile, replaced as a whole under a lock whenever
/// ``TokenCache``'s state changes — inside the actor's operation, so a withdrawn token (logout,
/// `DELETE /v1/token`, a 401, a changed secret file) is gone before that operation returns.
public final class TokenSnapshots: Sendable {
    private let current = Mutex<[String: TokenSnapshot]>([:])

    public init() {}

    /// The profile's snapshot, if it has one.
    public func snapshot(profile: String) -> TokenSnapshot? {
        current.withLock { $0[profile] }
    }

    /// Replaces every snapshot at once.
    func publish(_ fresh: [String: TokenSnapshot]) {
        current.withLock { $0 = fresh }
    }
}
