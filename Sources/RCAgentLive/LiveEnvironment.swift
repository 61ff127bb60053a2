import Foundation
import RCAgentClient
import RCAgentCore
import RCAgentDaemon

/// The composition root: the one place that builds the real I/O edges — the keyring, the tenant
/// over HTTPS, desktop notifications, DNS, the clock — from ``Settings``, for every command and
/// for the daemon. Everything below takes protocols.
public struct LiveEnvironment: Sendable {
    public let settings: Settings
    public let clock: any AgentClock = SystemClock()

    public init(_ settings: Settings) { self.settings = settings }

    /// The user's Secret Service keyring.
    public func credentialStore() -> any CredentialStore {
        LibSecretStore(timeout: settings.keyringTimeout)
    }

    /// The network settings of `profile`: its `ca_file` (else `[defaults] ca_file`) and the
    /// process's proxy and CA environment. Every command and the agent get theirs from here.
    public func httpSettings(profile: String) -> HTTPSettings {
        Self.httpSettings(config: settings.config, profile: profile, environment: settings.environment)
    }

    /// The network settings of `profile` in `config` (the agent's, as it reads the file again).
    static func httpSettings(config: ConfigFile, profile: String, environment: [String: String]) -> HTTPSettings {
        HTTPSettings(config: config, profile: profile, environment: environment)
    }

    /// Runs `body` with a token client for `profile`'s tenant settings, shutting it down afterwards.
    public func withTokenClient<T: Sendable>(profile: String, _ body: (any TokenFetching) async throws -> T)
        async throws -> T
    {
        try await RiskCloudClient.withClient(settings: httpSettings(profile: profile), clock: clock) { try await body($0) }
    }

    /// Runs `body` with an `api` runner for the selected profile, shutting its client down afterwards.
    public func withAPIRunner<T: Sendable>(tokens: any AgentTokenSource, _ body: (APIRunner) async throws -> T)
        async throws -> T
    {
        let profile = settings.profile
        return try await RiskCloudClient.withClient(settings: httpSettings(profile: profile), clock: clock) {
            try await body(APIRunner(profile: profile, tokens: tokens, transport: $0, clock: clock))
        }
    }

    /// The agent's edges: the keyring, each profile's HTTP clients (built from its settings in
    /// the config as the agent last read it), the config file, notifications.
    public func agentRuntime() -> AgentRuntime {
        let configPath = settings.configPath
        let environment = settings.environment
        let connections = AgentConnections(
            config: settings.config,
            settings: { Self.httpSettings(config: $0, profile: $1, environment: environment) }, clock: clock)
        return AgentRuntime(
            store: credentialStore(), connections: connections, clock: clock,
            loadConfig: { try ConfigFile.load(path: configPath) },
            reminders: (settings.stateDirectory, FreedesktopNotifier()))
    }

    /// `rc-agent doctor` on the real keyring, network, resolver and clock. Doctor reads the
    /// settings itself (a broken config is one of its checks), so this takes the command line.
    public static func doctor(_ input: DoctorRunner.Input) -> DoctorRunner {
        DoctorRunner(
            input: input, makeStore: { LiveEnvironment($0).credentialStore() },
            connect: { try RiskCloudClient(settings: LiveEnvironment($0).httpSettings(profile: $0.profile), clock: SystemClock()) },
            resolver: SystemResolver(),
            clock: SystemClock())
    }
}
