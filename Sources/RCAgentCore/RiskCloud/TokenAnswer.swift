import FoundationEssentials

extension AccessToken {
    /// The longest `expires_in` taken: 100 years (the tenant's tokens last about one).
    public static let maximumLifetime: Double = 100 * 366 * 86_400

    /// Reads the token endpoint's `LegacyApiTokenOut` body (`access_token`, `token_type`,
    /// `expires_in`, `scope`); anything else is ``RiskCloudError/Kind/unexpectedResponse(status:excerpt:)``.
    /// The expiry is `sentAt` plus `expires_in`, which must be from 0 to ``maximumLifetime`` seconds
    /// (a larger one overflowed every `Int` the agent makes of it: found by `make fuzz`).
    public init(
        tokenAnswer response: UpstreamResponse, sentAt: Date, tenant: TenantURL, path: String, redacting: [String]
    ) throws {
        func unexpected(_ why: String) -> RiskCloudError {
            let excerpt = ResponseExcerpt.make(response.body, redacting: redacting)
            return RiskCloudError(
                .unexpectedResponse(status: response.status, excerpt: excerpt.isEmpty ? why : "\(why): \(excerpt)"),
                tenant: tenant.base, path: path)
        }
        guard let object = JSONValue(parsing: response.body)?.object else {
            throw unexpected("not a JSON object")
        }
        guard let value = object["access_token"]?.string, !value.isEmpty else {
            throw unexpected("no access_token")
        }
        let tokenType = object["token_type"]?.string ?? "bearer"
        guard tokenType.lowercased() == "bearer" else { throw unexpected("token_type is not bearer") }
        guard let expiresIn = object["expires_in"]?.double, expiresIn >= 0, expiresIn <= Self.maximumLifetime
        else {
            throw unexpected("no valid expires_in")
        }
        self.init(
            value: Secret(value), tokenType: tokenType, expiresAt: sentAt.addingTimeInterval(expiresIn),
            scope: object["scope"]?.string, obtainedAt: sentAt)
    }
}
