import FoundationEssentials

/// Tokens fetched in this process, with no agent: what `token`, `exec` and `api` use when the
/// selected profile's credentials come from the environment (a CI step, a one-off container).
/// Nothing is cached or written; each call is one token request.
public struct DirectTokenSource: AgentTokenSource {
    let store: any CredentialStore
    let fetcher: any TokenFetching
    let clock: any AgentClock

    public init(store: any CredentialStore, fetcher: any TokenFetching, clock: any AgentClock) {
        self.store = store
        self.fetcher = fetcher
        self.clock = clock
    }

    public func token(profile: String, minValid: Int?) async throws -> TokenResponse {
        guard let credential = try await store.load(profile: profile) else { throw NotLoggedInError(profile: profile) }
        let tenant = try TenantURL(parsing: credential.url)
        let token = try await fetcher.fetchToken(tenant: tenant, clientID: credential.clientID, secret: credential.secret)
        return TokenResponse(
            accessToken: token.value, expiresAt: WireJSON.rfc3339(token.expiresAt),
            expiresIn: max(0, Int(token.remaining(at: clock.now()))), profile: profile, url: tenant.base, rotation: nil)
    }

    public func refresh(profile: String) async throws -> TokenResponse {
        try await token(profile: profile, minValid: nil)
    }
}
