import RCAgentCore

/// The I/O edges the daemon is built from. The composition root (`LiveEnvironment`, RCAgentLive)
/// builds the real set; tests pass doubles.
public struct AgentRuntime: Sendable {
    public var store: any CredentialStore
    public var fetcher: any TokenFetching
    public var clock: any AgentClock
    /// The config file (read at start, on reload, and on a miss).
    public var loadConfig: @Sendable () throws -> ConfigFile
    /// Releases what the edges hold (HTTP clients) once the daemon has stopped.
    public var shutdown: @Sendable () async -> Void
    /// Rotation reminders (log warnings and desktop notifications), when set: where to remember
    /// the last notification per profile, and how to notify.
    public var reminders: (stateDirectory: String, notifier: any DesktopNotifier)?
    /// The tenant's HTTP side for the proxy (`/v1/proxy/…`); nil: the proxy answers 503.
    public var proxyTransport: (any TenantStreaming)? = nil

    public init(
        store: any CredentialStore, fetcher: any TokenFetching, clock: any AgentClock = SystemClock(),
        loadConfig: @escaping @Sendable () throws -> ConfigFile,
        shutdown: @escaping @Sendable () async -> Void = {},
        reminders: (stateDirectory: String, notifier: any DesktopNotifier)? = nil
    ) {
        self.reminders = reminders
        self.store = store
        self.fetcher = fetcher
        self.clock = clock
        self.loadConfig = loadConfig
        self.shutdown = shutdown
    }
}
