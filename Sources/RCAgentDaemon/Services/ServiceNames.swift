// ServiceLifecycle names each service with `"\(service)"`. Without a description that is a
// reflection of every stored property (loggers, closures, the store) — a few milliseconds of
// runtime type lookups at start-up, before the socket listens — and the names in its debug log
// lines would show those properties. The names are the type names the log showed for classes.

extension AgentSocketServer: CustomStringConvertible {
    public var description: String { "RCAgentDaemon.AgentSocketServer" }
}

extension SocketWatchService: CustomStringConvertible {
    var description: String { "RCAgentDaemon.SocketWatchService" }
}

extension RemindersService: CustomStringConvertible {
    var description: String { "RCAgentDaemon.RemindersService" }
}

extension CredentialWatchService: CustomStringConvertible {
    var description: String { "RCAgentDaemon.CredentialWatchService" }
}

extension BackgroundRefreshService: CustomStringConvertible {
    var description: String { "RCAgentDaemon.BackgroundRefreshService" }
}
