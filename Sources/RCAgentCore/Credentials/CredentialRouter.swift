import FoundationEssentials

/// The ``CredentialStore`` every command and the agent use: it sends each profile to the store or
/// source of its backend (``CredentialBackend/of(profile:config:environment:selectedProfile:)``),
/// reading the config through `config` each time, so the agent follows a `login --backend` or an
/// edit of the file without a restart.
public struct CredentialRouter: CredentialStore {
    let backends: [CredentialBackend: any CredentialStore]
    let config: @Sendable () -> ConfigFile
    let environment: [String: String]
    let selectedProfile: String

    /// - Parameters:
    ///   - backends: the store or source of each backend.
    ///   - config: the config as it is now.
    ///   - selectedProfile: the profile the environment's `RC_CLIENT_*` variables apply to.
    public init(
        backends: [CredentialBackend: any CredentialStore], config: @escaping @Sendable () -> ConfigFile,
        environment: [String: String], selectedProfile: String
    ) {
        self.backends = backends
        self.config = config
        self.environment = environment
        self.selectedProfile = selectedProfile
    }

    public func backend(for profile: String) -> CredentialBackend {
        CredentialBackend.of(
            profile: profile, config: config(), environment: environment, selectedProfile: selectedProfile)
    }

    private func store(_ profile: String) throws -> any CredentialStore {
        try store(for: backend(for: profile))
    }

    private func store(for backend: CredentialBackend) throws -> any CredentialStore {
        guard let store = backends[backend] else {
            throw CredentialSourceError(
                "the \"\(backend.rawValue)\" backend is not available in this build", hint: nil)
        }
        return store
    }

    public func load(profile: String) async throws -> StoredCredential? {
        try await store(profile).load(profile: profile)
    }

    public func save(_ credential: StoredCredential) async throws {
        try await store(credential.profile).save(credential)
    }

    @discardableResult
    public func delete(profile: String) async throws -> Bool {
        try await store(profile).delete(profile: profile)
    }

    /// The items of every store a profile uses (the config's, and the selected one unless it is
    /// merely the default); a store no profile uses is not asked (no bus needed for a keyctl-only
    /// setup). Sources list nothing: their profiles are the config's and the selected one.
    public func list() async throws -> [CredentialSummary] {
        var names = Set(config().profiles.keys)
        if backend(for: selectedProfile) != .secretService || names.isEmpty { names.insert(selectedProfile) }
        let byBackend = Dictionary(grouping: names) { backend(for: $0) }
        var summaries: [CredentialSummary] = []
        for (backend, profiles) in byBackend.sorted(by: { $0.key.rawValue < $1.key.rawValue }) {
            let listed = try await store(for: backend).list()
            summaries += backend.isStore ? listed : listed.filter { profiles.contains($0.profile) }
        }
        return summaries.sorted { $0.profile < $1.profile }
    }

    @discardableResult
    public func reconcile(profile: String) async throws -> Bool {
        try await store(profile).reconcile(profile: profile)
    }

    public func readOnly(profile: String) -> ReadOnlyCredentialsError? {
        (try? store(profile))?.readOnly(profile: profile)
    }

    public func fingerprint(profile: String) async -> Int? {
        await (try? store(profile))?.fingerprint(profile: profile)
    }

    /// Each backend is asked about its own profiles only: a `secret-service` profile on a machine
    /// without a bus is `unavailable`, the `keyctl`, `env` and `file` ones are not.
    public func states(profiles: [String]) async -> [String: CredentialState] {
        var states: [String: CredentialState] = [:]
        for (backend, names) in Dictionary(grouping: profiles, by: { backend(for: $0) }) {
            guard let store = backends[backend] else {
                for name in names {
                    states[name] = CredentialState(
                        backend: backend, keyring: .unavailable, error: "the \"\(backend.rawValue)\" backend is not available")
                }
                continue
            }
            for (name, state) in await store.states(profiles: names) {
                var state = state
                state.backend = backend
                states[name] = state
            }
        }
        return states
    }
}

// The router holds the process environment (RC_CLIENT_SECRET among it): printed — ServiceLifecycle
// logs its services at debug level — it shows only which backends it has.
extension CredentialRouter: CustomStringConvertible, CustomDebugStringConvertible {
    public var description: String {
        "CredentialRouter(\(backends.keys.map(\.rawValue).sorted().joined(separator: ", ")))"
    }
    public var debugDescription: String { description }
}
