import Foundation

/// How one doctor check ended.
public enum DoctorCheckStatus: String, Sendable, Codable, Equatable {
    /// Passed.
    case ok
    /// Failed: the run fails with this check's exit status.
    case fail
    /// A problem worth knowing that does not fail the run (e.g. 403 on a Build Access endpoint).
    case warn
    /// Not run because a check it depends on did not pass.
    case skip

    /// The mark in the human output.
    public var mark: String {
        switch self {
        case .ok: return "✓"
        case .fail: return "✗"
        case .warn: return "!"
        case .skip: return "-"
        }
    }
}

/// One line of `rc-agent doctor`: `{"id","status","message","hint","elapsed_ms"}`.
public struct DoctorCheckResult: Sendable, Equatable, Codable {
    /// Stable id: `config`, `keyring`, `tenant`, `auth`, `records`, `permissions`, `agent`, `rotation`.
    public var id: String
    public var status: DoctorCheckStatus
    public var message: String
    /// What to do, or nil.
    public var hint: String?
    /// Wall time the check took.
    public var elapsedMS: Int
    /// The exit status a failure of this check ends the run with (not part of the JSON).
    public var exitStatus: ExitStatus

    public init(
        id: String, status: DoctorCheckStatus, message: String, hint: String?, elapsedMS: Int,
        exitStatus: ExitStatus = .ok
    ) {
        self.id = id
        self.status = status
        self.message = message
        self.hint = hint
        self.elapsedMS = elapsedMS
        self.exitStatus = status == .fail ? exitStatus : .ok
    }

    enum CodingKeys: String, CodingKey {
        case id, status, message, hint
        case elapsedMS = "elapsed_ms"
    }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        id = try container.decode(String.self, forKey: .id)
        status = try container.decode(DoctorCheckStatus.self, forKey: .status)
        message = try container.decode(String.self, forKey: .message)
        hint = try container.decodeIfPresent(String.self, forKey: .hint)
        elapsedMS = try container.decode(Int.self, forKey: .elapsedMS)
        exitStatus = status == .fail ? .failure : .ok
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(id, forKey: .id)
        try container.encode(status, forKey: .status)
        try container.encode(message, forKey: .message)
        // Always present (null when there is none): the JSON shape is fixed for scripts.
        try container.encode(hint, forKey: .hint)
        try container.encode(elapsedMS, forKey: .elapsedMS)
    }
}

/// Everything `rc-agent doctor` found, in the order the checks ran.
public struct DoctorReport: Sendable, Equatable {
    public var checks: [DoctorCheckResult]

    public init(checks: [DoctorCheckResult]) { self.checks = checks }

    /// True when no check failed (warnings and skips do not count).
    public var ok: Bool { !checks.contains { $0.status == .fail } }

    /// 0 when nothing failed, else the exit status of the first failed check.
    public var exitStatus: ExitStatus { checks.first { $0.status == .fail }?.exitStatus ?? .ok }

    /// One line per check (`✓ id  message (N ms)`), with the hint indented under failures and warnings.
    public func render() -> String {
        let width = checks.map(\.id.count).max() ?? 0
        var out = ""
        for check in checks {
            let id = check.id.padding(toLength: width, withPad: " ", startingAt: 0)
            out += "\(check.status.mark) \(id)  \(check.message)"
            if check.status != .skip { out += " (\(check.elapsedMS) ms)" }
            out += "\n"
            if let hint = check.hint, check.status == .fail || check.status == .warn {
                out += String(repeating: " ", count: width + 4) + "fix: \(hint)\n"
            }
        }
        out += ok ? "no problems found\n" : "problems found: see ✗ above\n"
        return out
    }

    /// `{"checks":[{"id","status","message","hint","elapsed_ms"}],"ok":bool}` and a newline.
    public func json() -> String {
        struct Document: Encodable {
            let checks: [DoctorCheckResult]
            let ok: Bool
        }
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        let data = (try? encoder.encode(Document(checks: checks, ok: ok))) ?? Data("{}".utf8)
        return String(decoding: data, as: UTF8.self) + "\n"
    }
}
