import FoundationEssentials
import RCAgentClient
import RCAgentCore

/// `rc-agent profile list`: one line per profile (like `kubectl config get-contexts`), or JSON.
enum ProfileListView {
    /// One profile as `profile list --json` prints it.
    struct Entry: Encodable {
        var profile: String
        /// The profile commands use here (`--profile`, `RC_PROFILE`, `[defaults] profile`, `default`).
        var active: Bool
        /// The config's default (`[defaults] profile`, else `default`): what `profile use` sets.
        var isDefault: Bool
        var url: String?
        var clientID: String?
        /// Where the secret lives: the profile's backend (`secret-service`, `keyctl`, `env`, `file`),
        /// or nil when none is stored.
        var secret: String?
        var keyring: KeyringState
        var secretAgeDays: Int?
        var rotation: RotationStatus?
        /// The running agent's token for the profile; nil when no agent runs.
        var token: AgentStatus.TokenInfo?

        enum CodingKeys: String, CodingKey {
            case profile, active, url, secret, keyring, rotation, token
            case isDefault = "default"
            case clientID = "client_id"
            case secretAgeDays = "secret_age_days"
        }
    }

    struct Document: Encodable {
        var config: String
        var agentRunning: Bool
        var profiles: [Entry]

        enum CodingKeys: String, CodingKey {
            case config, profiles
            case agentRunning = "agent_running"
        }
    }

    static func entries(_ report: StatusReport, settings: Settings) -> [Entry] {
        let configDefault = settings.config.defaultProfile ?? "default"
        let tokens = report.agent?.status?.profiles ?? []
        return report.profiles.map { p in
            Entry(
                profile: p.profile, active: p.profile == settings.profile, isDefault: p.profile == configDefault,
                url: p.url, clientID: p.clientID, secret: p.secretStored ? p.backend.rawValue : nil, keyring: p.keyring,
                secretAgeDays: p.secretAgeDays, rotation: p.rotation,
                token: tokens.first { $0.profile == p.profile }?.token)
        }
    }

    static func json(_ report: StatusReport, settings: Settings) -> String {
        let document = Document(
            config: report.configPath, agentRunning: report.agent?.status != nil,
            profiles: entries(report, settings: settings))
        return String(decoding: (try? WireJSON.encode(document, pretty: true)) ?? Data("{}".utf8), as: UTF8.self) + "\n"
    }

    /// A header and one line per profile; `*` marks the profile commands use here.
    static func text(_ report: StatusReport, settings: Settings) -> String {
        let agentRuns = report.agent?.status != nil
        var rows = [["", "PROFILE", "URL", "CLIENT ID", "SECRET", "AGE", "TOKEN"]]
        for entry in entries(report, settings: settings) {
            rows.append([
                entry.active ? "*" : "",
                entry.profile,
                entry.url ?? "-",
                entry.clientID ?? "-",
                secret(entry),
                age(entry),
                agentRuns ? (entry.token.map(token) ?? "none") : "(no agent)",
            ])
        }
        let widths = (0..<rows[0].count).map { column in rows.map { $0[column].count }.max() ?? 0 }
        return rows.map { row in
            zip(row, widths).map { $0.padded(to: $1) }.joined(separator: "  ").trimmingTrailing(\.isBlankOrNewline)
        }.joined(separator: "\n") + "\n"
    }

    private static func secret(_ entry: Entry) -> String {
        if let secret = entry.secret { return entry.keyring == .ok ? secret : "\(secret) (\(entry.keyring.rawValue))" }
        return entry.keyring == .ok || entry.keyring == .missing ? "none" : "? (keyring \(entry.keyring.rawValue))"
    }

    private static func age(_ entry: Entry) -> String {
        guard let days = entry.secretAgeDays else { return "-" }
        guard let rotation = entry.rotation else { return "\(days)d" }
        return "\(days)d \(rotation.state.rawValue)"
    }

    private static func token(_ info: AgentStatus.TokenInfo) -> String {
        guard let seconds = info.expiresIn, info.state != .none else { return info.state.rawValue }
        return "\(info.state.rawValue) \(Duration.short(seconds))"
    }
}

/// What `profile use` says on stderr.
enum ProfileUseView {
    static func text(profile: String, settings: Settings, agent: AgentNotice.Result) -> String {
        var out = "default profile is now '\(profile)' (\(settings.configPath))\n"
        if settings.profileExplicit, settings.profile != profile {
            out += "note: --profile or RC_PROFILE selects '\(settings.profile)' here, and wins over the default\n"
        }
        switch agent {
        case .noAgent, .refreshed, .refused: break
        case .reloaded: out += "the running agent re-read the config\n"
        case .failed(let message): out += "warning: the running agent could not re-read the config: \(message)\n"
        }
        return out
    }
}

private enum Duration {
    /// `45s`, `12m`, `5h`, `30d`: the largest whole unit.
    static func short(_ seconds: Int) -> String {
        if seconds >= 86_400 { return "\(seconds / 86_400)d" }
        if seconds >= 3_600 { return "\(seconds / 3_600)h" }
        if seconds >= 60 { return "\(seconds / 60)m" }
        return "\(seconds)s"
    }
}
