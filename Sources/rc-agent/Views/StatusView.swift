import FoundationEssentials
import RCAgentClient
import RCAgentCore
import RCAgentDaemon
import RCAgentLive

/// `rc-agent status`: the report as lines for people, or as the stable JSON document.
enum StatusView {
    /// Human-readable lines.
    static func text(_ report: StatusReport) -> String {
        let agent = report.agent
        var out = "config: \(report.configPath)\n"
        out += "keyring: \(report.keyring.rawValue)\n"
        for warning in report.warnings { out += "warning: \(warning)\n" }
        if let agent { out += Self.text(agent) }
        for p in report.profiles {
            out += "\nprofile \(p.profile)\n"
            out += "  url:        \(p.url ?? "(not set)")\n"
            out += "  backend:    \(p.backend.rawValue): \(p.backend.summary)\n"
            for warning in p.warnings { out += "  warning:    \(warning)\n" }
            if p.secretStored {
                out += "  client id:  \(p.clientID ?? "?")\n"
                out += "  secret:     \(p.backend.isStore ? "stored" : "present")"
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
                switch p.backend {
                case .secretService, .keyctl:
                    let flag = p.backend == .keyctl ? " --backend keyctl" : ""
                    out += "  secret:     not stored — run `rc-agent login --profile \(p.profile)\(flag)`\n"
                case .env:
                    out += "  secret:     not set — export RC_CLIENT_ID, RC_CLIENT_SECRET and RC_AGENT_URL\n"
                case .file:
                    out += "  secret:     no file — set client_secret_file (or run under systemd credentials)\n"
                }
            } else {
                out += "  secret:     unavailable (\(p.keyring.rawValue))\n"
                if let error = p.keyringError {
                    out += error.split(separator: "\n").map { "              \($0.trimmingBlanks())\n" }.joined()
                }
            }
        }
        return out
    }

    /// The stable JSON document for scripts (dates in RFC 3339 UTC, keys sorted).
    static func json(_ report: StatusReport) -> String {
        String(decoding: (try? WireJSON.encode(report, pretty: true)) ?? Data("{}".utf8), as: UTF8.self)
    }

    /// The agent's line.
    static func text(_ view: AgentView) -> String {
        guard let status = view.status else { return "agent: not running (\(view.socket))\n" }
        return "agent: running, pid \(status.pid), up \(status.uptime) s, socket \(status.socket)\n"
    }
}
