import FoundationEssentials

/// A bearer token from `POST /api/v1/account/token`.
public struct AccessToken: Sendable, Equatable {
    /// The token itself.
    public var value: Secret
    /// `token_type` as the tenant sent it (normally `bearer`).
    public var tokenType: String
    /// Absolute expiry: the time the request was *sent* plus `expires_in`.
    public var expiresAt: Date
    /// `scope`, if sent.
    public var scope: String?
    /// When the request that produced it was sent.
    public var obtainedAt: Date

    public init(value: Secret, tokenType: String, expiresAt: Date, scope: String?, obtainedAt: Date) {
        self.value = value
        self.tokenType = tokenType
        self.expiresAt = expiresAt
        self.scope = scope
        self.obtainedAt = obtainedAt
    }

    /// Seconds of life left at `now` (negative once expired).
    public func remaining(at now: Date) -> Double { expiresAt.timeIntervalSince(now) }
}

/// The token endpoint, the I/O edge between rc-agent and the tenant. `RiskCloudClient` (RCAgentLive) is the real one.
///
/// It makes exactly one attempt: retries and backoff belong to the caller (the token cache).
/// Errors are ``RiskCloudError``.
public protocol TokenFetching: Sendable {
    /// Exchanges the Client ID and Secret for a bearer token.
    func fetchToken(tenant: TenantURL, clientID: String, secret: Secret) async throws -> AccessToken
}
