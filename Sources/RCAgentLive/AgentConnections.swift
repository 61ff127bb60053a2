import FoundationEssentials
import RCAgentCore
import RCAgentDaemon
import Synchronization

/// The agent's HTTP clients, per profile: each built from that profile's HTTP settings (its own
/// `ca_file`, else `[defaults] ca_file`), with one client for the token endpoint and another for
/// the proxy, so each has a connection pool of its own.
///
/// Clients are built on first use. When the config is read again (SIGHUP, or a profile the
/// agent did not know yet), a profile whose settings changed — another `ca_file`, or new content
/// in the CA bundle — gets new clients; the old ones finish what they are doing and are shut down
/// with the rest when the agent stops.
final class AgentConnections: TenantConnections {
    /// A profile's two clients and what they were built from.
    private struct Clients {
        let fingerprint: Fingerprint
        let token: RiskCloudClient
        let proxy: RiskCloudClient
    }

    /// What a profile's clients depend on: the CA bundle's path and content.
    private struct Fingerprint: Equatable {
        let caFile: String?
        let caContent: Data?

        /// The file as it is now.
        init(_ settings: HTTPSettings) {
            caFile = settings.effectiveCAFile
            caContent = caFile.flatMap { FileManager.default.contents(atPath: $0) }
        }
    }

    private struct State {
        var config: ConfigFile
        var clients: [String: Clients] = [:]
        var retired: [RiskCloudClient] = []
    }

    private let settingsFor: @Sendable (ConfigFile, String) -> HTTPSettings
    private let clock: any AgentClock
    private let state: Mutex<State>

    /// - Parameter settings: a profile's HTTP settings in a config (``LiveEnvironment``'s one rule).
    init(config: ConfigFile, settings: @escaping @Sendable (ConfigFile, String) -> HTTPSettings, clock: any AgentClock) {
        settingsFor = settings
        self.clock = clock
        state = Mutex(State(config: config))
    }

    func tokenFetcher(profile: String) throws -> any TokenFetching { try clients(profile).token }

    func proxy(profile: String) throws -> any TenantStreaming { try clients(profile).proxy }

    func update(config: ConfigFile) {
        state.withLock { state in
            state.config = config
            for (profile, clients) in state.clients
            where clients.fingerprint != Fingerprint(settingsFor(config, profile)) {
                state.retired += [clients.token, clients.proxy]
                state.clients[profile] = nil
            }
        }
    }

    func shutdown() async {
        let all = state.withLock { state in
            defer { state.clients = [:]; state.retired = [] }
            return state.retired + state.clients.values.flatMap { [$0.token, $0.proxy] }
        }
        for client in all { try? await client.shutdown() }
    }

    /// `profile`'s clients, built now if it has none. Throws ``RiskCloudError`` (`bad_config`)
    /// when its CA bundle or proxy cannot be used.
    private func clients(_ profile: String) throws -> Clients {
        try state.withLock { state in
            if let clients = state.clients[profile] { return clients }
            let settings = settingsFor(state.config, profile)
            // One read of the CA bundle: both clients trust these bytes, and the fingerprint is of them.
            let fingerprint = Fingerprint(settings)
            let token = try RiskCloudClient(settings: settings, clock: clock, caContent: fingerprint.caContent)
            let proxy: RiskCloudClient
            do {
                proxy = try RiskCloudClient(settings: settings, clock: clock, caContent: fingerprint.caContent)
            } catch {
                state.retired.append(token)
                throw error
            }
            let clients = Clients(fingerprint: fingerprint, token: token, proxy: proxy)
            state.clients[profile] = clients
            return clients
        }
    }
}
