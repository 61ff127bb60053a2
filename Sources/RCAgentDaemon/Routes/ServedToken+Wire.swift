import FoundationEssentials
import RCAgentCore

extension TokenResponse {
    /// The answer for `served` at `now`, with the secret's rotation status under `policy`.
    init(_ served: ServedToken, now: Date, policy: RotationPolicy? = nil) {
        self.init(
            served, expiresAt: WireJSON.rfc3339(served.token.expiresAt), url: served.tenant.base, now: now, policy: policy)
    }

    /// The same from a snapshot, whose expiry and URL are already written out.
    init(_ snapshot: TokenSnapshot, now: Date, policy: RotationPolicy?) {
        self.init(snapshot.served, expiresAt: snapshot.expiresAtText, url: snapshot.tenantBase, now: now, policy: policy)
    }

    private init(_ served: ServedToken, expiresAt: String, url: String, now: Date, policy: RotationPolicy?) {
        self.init(
            accessToken: served.token.value, expiresAt: expiresAt,
            expiresIn: max(0, Int(served.token.remaining(at: now))), profile: served.profile, url: url,
            rotation: served.secretCreated.flatMap { created in policy?.status(created: created, now: now) })
    }
}
