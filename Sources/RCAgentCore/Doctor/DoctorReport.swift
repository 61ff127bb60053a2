import FoundationEssentials

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
}
