import FoundationEssentials

/// Keyring health as `status` and `GET /v1/status` report it.
public enum KeyringState: String, Sendable, Codable {
    case ok, locked, unavailable
    /// No item for the profile (per profile in `GET /v1/status` only).
    case missing
}

/// What `rc-agent status` knows about one profile, without any secret.
public struct ProfileStatus: Sendable, Equatable, Codable {
    public var profile: String
    /// Where the credentials come from.
    public var backend: CredentialBackend
    public var url: String?
    /// Shortened for display (`abcd…wxyz`); the full id is not a secret but need not be on screen.
    public var clientID: String?
    public var secretStored: Bool
    public var keyring: KeyringState
    /// Why `keyring` is not `ok`, with the fix.
    public var keyringError: String?
    /// Problems that do not stop rc-agent (a secret file readable by others).
    public var warnings: [String]
    /// When the secret was first stored, if known.
    public var created: Date?
    /// Whole days since `created`.
    public var secretAgeDays: Int?
    /// Age against the rotation policy, when `created` is known.
    public var rotation: RotationStatus?
    /// Stored items for the profile: 2 or more after an interrupted rotation.
    public var storedItems: Int

    enum CodingKeys: String, CodingKey {
        case profile, backend, url, keyring, created, warnings
        case clientID = "client_id"
        case keyringError = "keyring_error"
        case secretStored = "secret_stored"
        case secretAgeDays = "secret_age_days"
        case rotation
        case storedItems = "stored_items"
    }
}

/// The local half of `rc-agent status`: config and keyring, per profile.
public struct StatusReport: Sendable, Equatable, Codable {
    public var configPath: String
    public var keyring: KeyringState
    /// The keyring error's message when the keyring is not `ok`.
    public var keyringError: String?
    public var profiles: [ProfileStatus]
    /// Config warnings (unknown keys, a file others can write).
    public var warnings: [String]
    /// The running agent's view, when it was asked.
    public var agent: AgentView?

    enum CodingKeys: String, CodingKey {
        case keyring, profiles, warnings, agent
        case configPath = "config"
        case keyringError = "keyring_error"
    }

    /// Collects the report. With `onlyProfile`, just that profile; otherwise every profile that
    /// the config or a store in use knows, plus the selected one. Each profile is reported for its
    /// own backend; the top-level `keyring` is the worst of them.
    public static func collect(
        settings: Settings, onlyProfile: String?, store: any CredentialStore, now: Date
    ) async -> StatusReport {
        var names = Set([onlyProfile ?? settings.profile])
        if onlyProfile == nil {
            names.formUnion(settings.config.profiles.keys)
            names.formUnion(((try? await store.list()) ?? []).map(\.profile))
        }
        let states = await store.states(profiles: Array(names))
        let profiles = names.sorted().map { name -> ProfileStatus in
            let state = states[name] ?? CredentialState(backend: settings.backend(for: name), keyring: .unavailable)
            let item = state.summary
            return ProfileStatus(
                profile: name,
                backend: state.backend,
                url: settings.config.profiles[name]?.url ?? item?.url,
                clientID: item.map { shorten($0.clientID) },
                secretStored: item != nil,
                // "missing" is said by secret_stored here; keyring speaks of the backend itself.
                keyring: state.keyring == .missing ? .ok : state.keyring,
                keyringError: state.error,
                warnings: state.warnings,
                created: item?.created,
                secretAgeDays: item?.created.map { max(0, Int(now.timeIntervalSince($0) / 86_400)) },
                rotation: item?.created.map {
                    RotationPolicy(config: settings.config, profile: name).status(created: $0, now: now)
                },
                storedItems: item?.itemCount ?? 0
            )
        }
        let worst = profiles.first { $0.keyring != .ok }
        return StatusReport(
            configPath: settings.configPath, keyring: worst?.keyring ?? .ok, keyringError: worst?.keyringError,
            profiles: profiles, warnings: settings.config.warnings)
    }

    /// The exit status of the worst problem found (like `gh auth status`).
    public var exitStatus: ExitStatus {
        if agent?.failedToStart == true { return .agentUnreachable }
        if keyring != .ok || profiles.contains(where: { $0.keyring != .ok }) { return .keyringUnavailable }
        if profiles.contains(where: { !$0.secretStored }) { return .notLoggedIn }
        return .ok
    }

    /// `abcd…wxyz` for long ids, the id itself when it is short.
    public static func shorten(_ id: String) -> String {
        id.count <= 10 ? id : "\(id.prefix(4))…\(id.suffix(4))"
    }
}

/// What `status` learned from the agent on the socket.
public struct AgentView: Sendable, Equatable, Codable {
    public var running: Bool
    public var socket: String
    /// The agent's own `GET /v1/status`, when it answered.
    public var status: AgentStatus?
    /// Why it did not answer.
    public var error: String?
    /// True when it was to be started (autostart) and could not be.
    public var failedToStart: Bool

    enum CodingKeys: String, CodingKey {
        case running, socket, status, error
        case failedToStart = "failed_to_start"
    }

    public init(running: Bool, socket: String, status: AgentStatus?, error: String?, failedToStart: Bool) {
        self.running = running
        self.socket = socket
        self.status = status
        self.error = error
        self.failedToStart = failedToStart
    }
}
