import RCAgentCore

/// The I/O edges the daemon is built from. The composition root (`LiveEnvironment`, RCAgentLive)
/// builds the real set; tests pass doubles.
public struct AgentRuntime: Sendable {
    public var store: any CredentialStore
    /// The tenants' HTTP side, per profile: token fetches and the proxy (`/v1/proxy/…`). Ended
    /// once the daemon has stopped.
    public var connections: any TenantConnections
    public var clock: any AgentClock
    /// The config file (read at start, on reload, and on a miss).
    public var loadConfig: @Sendable () throws -> ConfigFile
    /// Rotation reminders (log warnings and desktop notifications), when set: where to remember
    /// the last notification per profile, and how to notify.
    public var reminders: (stateDirectory: String, notifier: any DesktopNotifier)?
    /// Returns the allocator's free memory to the system after a burst of connections, when set.
    public var memory: (any MemoryReleasing)?

    public init(
        store: any CredentialStore, connections: any TenantConnections, clock: any AgentClock = SystemClock(),
        loadConfig: @escaping @Sendable () throws -> ConfigFile,
        reminders: (stateDirectory: String, notifier: any DesktopNotifier)? = nil,
        memory: (any MemoryReleasing)? = nil
    ) {
        self.reminders = reminders
        self.memory = memory
        self.store = store
        self.connections = connections
        self.clock = clock
        self.loadConfig = loadConfig
    }
}
