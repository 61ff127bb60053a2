import FoundationEssentials
import RCAgentCore

extension TokenResponse {
    /// The answer for `served` at `now`, with the secret's rotation status under `policy`.
    init(_ served: ServedToken, now: Date, policy: RotationPolicy? = nil) {
        self.init(
            accessToken: served.token.value, expiresAt: WireJSON.rfc3339(served.token.expiresAt),
            expiresIn: max(0, Int(served.token.remaining(at: now))), profile: served.profile, url: served.tenant.base,
            rotation: served.secretCreated.flatMap { created in policy?.status(created: created, now: now) })
    }
}
