import Foundation

/// The tenant's HTTP side as `api` and `doctor` use it: tokens, any request, shutdown.
/// ``RiskCloudClient`` is the real one.
public protocol TenantRequesting: TokenFetching {
    /// One request; see ``RiskCloudClient/send(method:tenant:path:headers:body:token:maxBodyBytes:)``.
    func send(
        method: String, tenant: TenantURL, path: String, headers: [(name: String, value: String)],
        body: [UInt8]?, token: Secret?, maxBodyBytes: Int
    ) async throws -> UpstreamResponse
    /// Ends the HTTP clients; call once, after the last request.
    func shutdown() async throws
}

extension TenantRequesting {
    /// `GET {tenant}{path}` with the bearer `token` and no extra headers.
    public func bearerGET(tenant: TenantURL, path: String, token: Secret, maxBodyBytes: Int = 8 << 20) async throws
        -> UpstreamResponse
    {
        try await send(
            method: "GET", tenant: tenant, path: path, headers: [], body: nil, token: token, maxBodyBytes: maxBodyBytes)
    }
}

extension RiskCloudClient: TenantRequesting {}

/// Where `api` gets its bearer token: the agent. ``AgentClient`` is the real one.
public protocol AgentTokenSource: Sendable {
    /// A token with at least `minValid` seconds left (`GET /v1/token`).
    func token(profile: String, minValid: Int?) async throws -> TokenResponse
    /// A token fetched now, after the tenant refused the previous one (`POST /v1/token/refresh`).
    func refresh(profile: String) async throws -> TokenResponse
}

extension AgentClient: AgentTokenSource {}

extension HTTPSettings {
    /// The network settings of `profile`: its `ca_file` and the process's proxy/CA environment.
    public init(settings: Settings, profile: String) {
        self.init(caFile: settings.config.effective(profile: profile).caFile, environment: settings.environment)
    }
}
