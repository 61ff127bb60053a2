import Foundation

/// Keyring health as `status` reports it.
public enum KeyringState: String, Sendable, Codable {
    case ok, locked, unavailable
}

/// What `rc-agent status` knows about one profile, without any secret.
public struct ProfileStatus: Sendable, Equatable, Codable {
    public var profile: String
    public var url: String?
    /// Shortened for display (`abcd…wxyz`); the full id is not a secret but need not be on screen.
    public var clientID: String?
    public var secretStored: Bool
    public var keyring: KeyringState
    /// When the secret was first stored, if known.
    public var created: Date?
    /// Whole days since `created`.
    public var secretAgeDays: Int?
    /// Age against the rotation policy, when `created` is known.
    public var rotation: RotationStatus?
    /// Stored items for the profile: 2 or more after an interrupted rotation.
    public var storedItems: Int

    enum CodingKeys: String, CodingKey {
        case profile, url, keyring, created
        case clientID = "client_id"
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
    /// Config warnings (unknown keys).
    public var warnings: [String]
    /// The running agent's view, when it was asked.
    public var agent: AgentView?

    enum CodingKeys: String, CodingKey {
        case keyring, profiles, warnings, agent
        case configPath = "config"
        case keyringError = "keyring_error"
    }

    /// Collects the report. With `onlyProfile`, just that profile; otherwise every profile that
    /// the config or the keyring knows, plus the selected one.
    public static func collect(
        settings: Settings, onlyProfile: String?, store: any CredentialStore, now: Date
    ) async -> StatusReport {
        var keyring = KeyringState.ok
        var keyringError: String?
        var summaries: [CredentialSummary] = []
        do {
            summaries = try await store.list()
        } catch let error as KeyringError {
            keyring = error == .locked ? .locked : .unavailable
            keyringError = error.description
        } catch {
            keyring = .unavailable
            keyringError = "\(error)"
        }
        var names = Set([onlyProfile ?? settings.profile])
        if onlyProfile == nil {
            names.formUnion(settings.config.profiles.keys)
            names.formUnion(summaries.map(\.profile))
        }
        let profiles = names.sorted().map { name -> ProfileStatus in
            let item = summaries.first { $0.profile == name }
            let itemKeyring: KeyringState = keyring != .ok ? keyring : (item?.locked == true ? .locked : .ok)
            return ProfileStatus(
                profile: name,
                url: settings.config.profiles[name]?.url ?? item?.url,
                clientID: item.map { shorten($0.clientID) },
                secretStored: item != nil,
                keyring: itemKeyring,
                created: item?.created,
                secretAgeDays: item?.created.map { max(0, Int(now.timeIntervalSince($0) / 86_400)) },
                rotation: item?.created.map {
                    RotationPolicy(config: settings.config, profile: name).status(created: $0, now: now)
                },
                storedItems: item?.itemCount ?? 0
            )
        }
        return StatusReport(
            configPath: settings.configPath, keyring: keyring, keyringError: keyringError,
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

    /// Human-readable lines.
    public func render() -> String {
        var out = "config: \(configPath)\n"
        out += "keyring: \(keyring.rawValue)"
        if let keyringError { out += " (\(keyringError))" }
        out += "\n"
        for warning in warnings { out += "warning: \(warning)\n" }
        if let agent { out += agent.render() }
        for p in profiles {
            out += "\nprofile \(p.profile)\n"
            out += "  url:        \(p.url ?? "(not set)")\n"
            if p.secretStored {
                out += "  client id:  \(p.clientID ?? "?")\n"
                out += "  secret:     stored in keyring"
                if let age = p.secretAgeDays { out += ", \(age) day\(age == 1 ? "" : "s") old" }
                out += "\n"
                if p.storedItems > 1 {
                    out += "  note:       a rotation was interrupted: \(p.storedItems) secrets are stored and the newest is in use;\n"
                    out += "              run `rc-agent rotate --resume --profile \(p.profile)` to remove the older\n"
                }
                if let token = agent?.status?.profiles.first(where: { $0.profile == p.profile })?.token {
                    out += "  token:      \(token.state.rawValue)"
                    if let expiresAt = token.expiresAt { out += ", expires \(expiresAt)" }
                    out += "\n"
                }
                if let rotation = p.rotation {
                    out += "  rotation:   \(rotation.state.rawValue), due \(RotationStatus.day(rotation.dueAt))"
                    out += " (every \(rotation.rotateAfterDays) days)\n"
                    if rotation.needsReminder { out += "              run `rc-agent rotate --profile \(p.profile)`\n" }
                }
            } else if p.keyring == .ok {
                out += "  secret:     not stored — run `rc-agent login --profile \(p.profile)`\n"
            } else {
                out += "  secret:     unknown (keyring \(p.keyring.rawValue))\n"
            }
        }
        return out
    }

    /// The stable JSON document for scripts (dates in RFC 3339 UTC, keys sorted).
    public func json() -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .prettyPrinted, .withoutEscapingSlashes]
        encoder.dateEncodingStrategy = .iso8601
        return String(decoding: (try? encoder.encode(self)) ?? Data("{}".utf8), as: UTF8.self)
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

    /// Asks the agent on `socketPath`, starting one first when `autostart` is on.
    public static func collect(socketPath: String, autostart: Bool, settings: Settings) async -> AgentView {
        do {
            let client = try await AgentLauncher.connect(socketPath: socketPath, autostart: autostart, settings: settings)
            return AgentView(running: true, socket: socketPath, status: try await client.status(), error: nil, failedToStart: false)
        } catch let error as RCAgentError {
            return AgentView(running: false, socket: socketPath, status: nil, error: error.message, failedToStart: autostart)
        } catch {
            return AgentView(running: false, socket: socketPath, status: nil, error: "\(error)", failedToStart: autostart)
        }
    }

    func render() -> String {
        guard let status else { return "agent: not running (\(socket))\n" }
        return "agent: running, pid \(status.pid), up \(status.uptime) s, socket \(status.socket)\n"
    }
}
