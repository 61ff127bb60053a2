import FoundationEssentials
import RCAgentClient
import RCAgentCore
import RCAgentDaemon
import RCAgentLive

/// `rc-agent doctor`: the report as lines for people, or as one JSON document.
enum DoctorView {
    /// One line per check (`✓ id  message (N ms)`), with the hint indented under failures and warnings.
    static func text(_ report: DoctorReport) -> String {
        let checks = report.checks
        let width = checks.map(\.id.count).max() ?? 0
        var out = ""
        for check in checks {
            let id = check.id.padded(to: width)
            out += "\(check.status.mark) \(id)  \(check.message)"
            if check.status != .skip { out += " (\(check.elapsedMS) ms)" }
            out += "\n"
            if let hint = check.hint, check.status == .fail || check.status == .warn {
                out += String(repeating: " ", count: width + 4) + "fix: \(hint)\n"
            }
        }
        out += report.ok ? "no problems found\n" : "problems found: see ✗ above\n"
        return out
    }

    /// `{"checks":[{"id","status","message","hint","elapsed_ms"}],"ok":bool}` and a newline.
    static func json(_ report: DoctorReport) -> String {
        struct Document: Encodable {
            let checks: [DoctorCheckResult]
            let ok: Bool
        }
        let data = (try? WireJSON.encode(Document(checks: report.checks, ok: report.ok))) ?? Data("{}".utf8)
        return String(decoding: data, as: UTF8.self) + "\n"
    }
}
