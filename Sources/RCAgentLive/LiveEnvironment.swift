import FoundationEssentials
import RCAgentClient
import RCAgentCore
import RCAgentDaemon
import Synchronization

/// The composition root: the one place that builds the real I/O edges — the credential stores and
/// sources, the tenant
/// over HTTPS, desktop notifications, DNS, the clock — from ``Settings``, for every command and
/// for the daemon. Everything below takes protocols.
public struct LiveEnvironment: Sendable {
    public let settings: Settings
    public let clock: any AgentClock = SystemClock()

    public init(_ settings: Settings) { self.settings = settings }

    /// Every profile's credentials, each from its own backend (``CredentialRouter``), as the
    /// settings' config says.
    public func credentialStore() -> any CredentialStore {
        let config = settings.config
        return credentialRouter { config }
    }

    /// The store or source of one backend (`login --backend`).
    public func credentialStore(backend: CredentialBackend) -> any CredentialStore {
        let config = settings.config
        return credentialBackends { config }[backend] ?? credentialStore()
    }

    /// The router reading the config through `config` on every call (the agent follows the file).
    private func credentialRouter(
        secretService: (any CredentialStore)? = nil, config: @escaping @Sendable () -> ConfigFile
    ) -> CredentialRouter {
        CredentialRouter(
            backends: credentialBackends(secretService: secretService, config: config), config: config,
            environment: settings.environment, selectedProfile: settings.profile)
    }

    /// Each backend's store or source; the Secret Service is libsecret in this process unless
    /// `secretService` replaces it (the agent's ``KeyringProcessStore``).
    private func credentialBackends(
        secretService: (any CredentialStore)? = nil, config: @escaping @Sendable () -> ConfigFile
    ) -> [CredentialBackend: any CredentialStore] {
        [
            .secretService: secretService
                ?? LibSecretStore(timeout: settings.keyringTimeout, environment: settings.environment),
            .keyctl: KeyctlStore(),
            .env: EnvironmentSource(environment: settings.environment, config: config),
            .file: SecretFileSource(environment: settings.environment, config: config),
        ]
    }

    /// Where a command's tokens come from: the agent on `socketPath` (started first when
    /// `autostart`), or — when the selected profile's credentials come from the environment — a
    /// fetch in this process, with no agent, no keyring and nothing written.
    public func withTokenSource<T: Sendable>(
        socketPath: String, autostart: Bool, prompt: UnlockPrompt, _ body: (any AgentTokenSource) async throws -> T
    ) async throws -> T {
        let profile = settings.profile
        guard settings.backend(for: profile) == .env else {
            let client = try await AgentLauncher.connect(socketPath: socketPath, autostart: autostart, settings: settings)
            return try await body(agentTokens(client, prompt: prompt))
        }
        let store = credentialStore()
        return try await withTokenClient(profile: profile) { fetcher in
            try await body(DirectTokenSource(store: store, fetcher: fetcher, clock: clock))
        }
    }

    /// Each writable store (`secret-service`, `keyctl`), answering a locked keyring with `prompt`:
    /// what `logout` goes over, whichever backend a profile uses now.
    public func writableStores(prompt: UnlockPrompt) -> [CredentialBackend: any CredentialStore] {
        let config = settings.config
        return credentialBackends { config }.filter { $0.key.isStore }
            .mapValues { PromptingCredentialStore($0, prompt: prompt) }
    }

    /// The store `profile` uses before a `login --backend` moves it, when it is one that can hold
    /// an item here (nil for a source, and for the Secret Service on a machine without a session bus).
    public func storeBeforeLogin(profile: String, prompt: UnlockPrompt) -> (any CredentialStore)? {
        let backend = settings.backend(for: profile)
        guard backend.isStore, backend != .secretService || LibSecretStore.missingBus(settings.environment) == nil
        else { return nil }
        return credentialStore(backend: backend, prompt: prompt)
    }

    /// The keyring for a command that answers a locked keyring with `prompt`.
    public func credentialStore(backend: CredentialBackend? = nil, prompt: UnlockPrompt) -> any CredentialStore {
        PromptingCredentialStore(backend.map { credentialStore(backend: $0) } ?? credentialStore(), prompt: prompt)
    }

    /// The keyring's unlock prompt for a command: on when stderr is a terminal, unless
    /// `noPromptFlag` or `RC_AGENT_NO_PROMPT=1`. `waiting` runs when the prompt is about to show.
    public func unlockPrompt(noPromptFlag: Bool, waiting: @escaping @Sendable () -> Void) -> UnlockPrompt {
        UnlockPrompt(
            person: Terminal.standardError.isTerminal, noPromptFlag: noPromptFlag, environment: settings.environment,
            unlocker: LibSecretStore(timeout: settings.keyringTimeout), waiting: waiting)
    }

    /// The agent on `client`'s socket as a token source that answers its `keyring_locked` with
    /// `prompt`, then has it read the keyring again.
    public func agentTokens(_ client: AgentClient, prompt: UnlockPrompt) -> any AgentTokenSource {
        PromptingTokenSource(client, prompt: prompt, forget: { try await client.forget(profile: $0) })
    }

    /// The network settings of `profile`: its `ca_file` (else `[defaults] ca_file`) and the
    /// process's proxy and CA environment. Every command and the agent get theirs from here.
    public func httpSettings(profile: String) -> HTTPSettings {
        HTTPSettings(config: settings.config, profile: profile, environment: settings.environment)
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

    /// The agent's edges: the credential backends, each profile's HTTP clients (built from its
    /// settings in the config as the agent last read it), the config file, notifications.
    ///
    /// - Parameter keyringHelper: the rc-agent binary that runs the agent's keyring calls and
    ///   notifications in a child of their own (``KeyringProcessStore``); this process's own
    ///   binary by default.
    public func agentRuntime(keyringHelper: String = "/proc/self/exe") -> AgentRuntime {
        let (configPath, profile, environment) = (settings.configPath, settings.profile, settings.environment)
        let connections = AgentConnections(
            config: settings.config,
            settings: { HTTPSettings(config: $0, profile: $1, environment: environment) }, clock: clock)
        // One config for the agent: the file as last read successfully (by a credential lookup or
        // a reload). A file that stops parsing leaves the agent on that, never on an older copy.
        let lastGood = Mutex(settings.config)
        let read: @Sendable () throws -> ConfigFile = {
            let config = try ConfigFile.load(path: configPath)
            lastGood.withLock { $0 = config }
            return config
        }
        let keyring = KeyringProcessStore(
            executable: keyringHelper, environment: environment, timeout: settings.keyringTimeout)
        let notifier = KeyringProcessNotifier(
            executable: keyringHelper, environment: environment, timeout: settings.keyringTimeout)
        return AgentRuntime(
            store: credentialRouter(secretService: keyring) { (try? read()) ?? lastGood.withLock { $0 } },
            connections: connections, clock: clock,
            loadConfig: { try read().addingEnvironmentProfile(profile, environment: environment) },
            reminders: (settings.stateDirectory, notifier), memory: AgentMemoryRelease())
    }

    /// `rc-agent doctor` on the real keyring, network, resolver and clock. Doctor reads the
    /// settings itself (a broken config is one of its checks), so this takes the command line;
    /// its keyring check answers a locked keyring with the unlock prompt as other commands do.
    public static func doctor(
        _ input: DoctorRunner.Input, noPromptFlag: Bool, waiting: @escaping @Sendable () -> Void
    ) -> DoctorRunner {
        DoctorRunner(
            input: input,
            makeStore: {
                let live = LiveEnvironment($0)
                return live.credentialStore(prompt: live.unlockPrompt(noPromptFlag: noPromptFlag, waiting: waiting))
            },
            connect: { try RiskCloudClient(settings: LiveEnvironment($0).httpSettings(profile: $0.profile), clock: SystemClock()) },
            resolver: SystemResolver(),
            clock: SystemClock())
    }
}
