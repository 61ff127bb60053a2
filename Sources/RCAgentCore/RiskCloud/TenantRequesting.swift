import FoundationEssentials

/// One HTTP answer from the tenant, whatever its status.
public struct UpstreamResponse: Sendable {
    public let status: Int
    public let headers: [(name: String, value: String)]
    public let body: [UInt8]

    public init(status: Int, headers: [(name: String, value: String)], body: [UInt8]) {
        self.status = status
        self.headers = headers
        self.body = body
    }

    /// The first header called `name` (case-insensitive).
    public func header(_ name: String) -> String? {
        headers.first { $0.name.equalsIgnoringASCIICase(name) }?.value
    }
}

/// The tenant's HTTP side as `api` and `doctor` use it: tokens, any request, shutdown.
/// `RiskCloudClient` (RCAgentLive) is the real one.
public protocol TenantRequesting: TokenFetching {
    /// One request, one attempt: the answer whatever its status, the body read up to `maxBodyBytes`.
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

/// Where `api` and the proxy get a bearer token: the agent (`AgentClient`), or its own cache.
public protocol AgentTokenSource: Sendable {
    /// A token with at least `minValid` seconds left (`GET /v1/token`).
    func token(profile: String, minValid: Int?) async throws -> TokenResponse
    /// A token fetched now, after the tenant refused the previous one (`POST /v1/token/refresh`).
    func refresh(profile: String) async throws -> TokenResponse
}


/// Rules every request to the tenant follows.
public enum TenantRequest {
    /// `path` without its query: what diagnoses and logs name (a query can hold anything).
    public static func pathWithoutQuery(_ path: String) -> String { String(path.prefix { $0 != "?" }) }

    /// Headers a caller may not set: rc-agent owns the credentials and the framing.
    public static let reservedHeaders: Set<String> = [
        "authorization", "host", "content-length", "transfer-encoding", "connection",
    ]
}
