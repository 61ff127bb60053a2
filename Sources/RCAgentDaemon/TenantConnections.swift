import RCAgentCore

/// The agent's HTTP side to tenants, per profile: the client the token cache fetches tokens with
/// and the one the proxy streams through. `AgentConnections` (RCAgentLive) is the real one: each
/// profile's clients are built from that profile's HTTP settings (its own `ca_file`), and the
/// token endpoint has a connection pool of its own, so proxied downloads never queue a token
/// refresh.
public protocol TenantConnections: Sendable {
    /// The token endpoint client of `profile`.
    func tokenFetcher(profile: String) throws -> any TokenFetching
    /// The proxy's client of `profile`.
    func proxy(profile: String) throws -> any TenantStreaming
    /// The config as the agent read it again (start, SIGHUP, a profile it did not know): clients
    /// whose settings changed (`ca_file`, or the CA bundle's content) are built again.
    func update(config: ConfigFile)
    /// Ends every client; once, after the last request.
    func shutdown() async
}

/// The same clients for every profile, whatever the config says (tests, and agents given one
/// client). Without a proxy client the proxy answers `proxy_unavailable`.
public struct SharedTenantConnections: TenantConnections {
    let fetcher: any TokenFetching
    let streaming: (any TenantStreaming)?

    public init(fetcher: any TokenFetching, proxy: (any TenantStreaming)? = nil) {
        self.fetcher = fetcher
        self.streaming = proxy
    }

    public func tokenFetcher(profile: String) throws -> any TokenFetching { fetcher }

    public func proxy(profile: String) throws -> any TenantStreaming {
        guard let streaming else {
            throw AgentError(
                .proxyUnavailable, message: "this agent has no connection to tenants for the proxy",
                hint: "run the agent with `rc-agent daemon`")
        }
        return streaming
    }

    public func update(config: ConfigFile) {}
    public func shutdown() async {}
}
