import RCAgentCore

/// How the daemon listens and whom it serves.
public struct AgentDaemonOptions: Sendable {
    /// Where the socket is (bound, or only reported when systemd passed one).
    public var socketPath: String
    /// A listening socket passed by systemd (``Systemd/takeListenDescriptor()``), used instead of binding.
    public var inheritedDescriptor: CInt?
    /// Peer uids served besides the daemon's own (root is refused unless listed here).
    public var extraAllowedUIDs: Set<UInt32>
    public var limits: AgentServerLimits
    public var policy: RefreshPolicy
    /// How often the daemon checks that its socket file is still the one it bound (``SocketWatchService``).
    public var socketCheckInterval: Duration = .seconds(5)
    /// How often delivered secrets (the `file` backend) are checked for a change.
    public var credentialCheckInterval: Duration = .seconds(2)

    public init(
        socketPath: String, inheritedDescriptor: CInt? = nil, extraAllowedUIDs: Set<UInt32> = [],
        limits: AgentServerLimits = AgentServerLimits(), policy: RefreshPolicy = RefreshPolicy()
    ) {
        self.socketPath = socketPath
        self.inheritedDescriptor = inheritedDescriptor
        self.extraAllowedUIDs = extraAllowedUIDs
        self.limits = limits
        self.policy = policy
    }
}
