import FoundationEssentials

/// How old a secret may get: `rotate_after_days` and `remind_before_days` from the config.
public struct RotationPolicy: Sendable, Equatable {
    /// Built-in defaults: rotate every 90 days, remind during the last 14.
    public static let defaultRotateAfterDays = 90
    public static let defaultRemindBeforeDays = 14

    public var rotateAfterDays: Int
    public var remindBeforeDays: Int

    public init(rotateAfterDays: Int = defaultRotateAfterDays, remindBeforeDays: Int = defaultRemindBeforeDays) {
        self.rotateAfterDays = rotateAfterDays
        self.remindBeforeDays = remindBeforeDays
    }

    /// The policy for `profile`: the profile's table, then `[defaults]`, then the built-ins.
    public init(config: ConfigFile, profile: String) {
        let effective = config.effective(profile: profile)
        self.init(
            rotateAfterDays: effective.rotateAfterDays ?? Self.defaultRotateAfterDays,
            remindBeforeDays: effective.remindBeforeDays ?? Self.defaultRemindBeforeDays)
    }

    /// Where a secret first stored at `created` stands at `now`.
    public func status(created: Date, now: Date) -> RotationStatus {
        let day = 86_400.0
        let age = max(0, now.timeIntervalSince(created))
        let dueAt = created.addingTimeInterval(Double(rotateAfterDays) * day)
        let remindFrom = dueAt.addingTimeInterval(-Double(remindBeforeDays) * day)
        let state: RotationState
        if now >= dueAt {
            state = .overdue
        } else if now >= remindFrom {
            state = .dueSoon
        } else {
            state = .ok
        }
        return RotationStatus(
            ageDays: Int(age / day), rotateAfterDays: rotateAfterDays, dueAt: dueAt, state: state)
    }
}

/// `ok`, `due_soon` (inside the reminder window) or `overdue` (age ≥ `rotate_after_days`).
public enum RotationState: String, Sendable, Codable {
    case ok
    case dueSoon = "due_soon"
    case overdue
}

/// The `rotation` object of `status --json`, `GET /v1/token` and `GET /v1/status`.
public struct RotationStatus: Sendable, Equatable, Codable {
    public var ageDays: Int
    public var rotateAfterDays: Int
    public var dueAt: Date
    public var state: RotationState

    enum CodingKeys: String, CodingKey {
        case ageDays = "age_days"
        case rotateAfterDays = "rotate_after_days"
        case dueAt = "due_at"
        case state
    }

    public init(ageDays: Int, rotateAfterDays: Int, dueAt: Date, state: RotationState) {
        self.ageDays = ageDays
        self.rotateAfterDays = rotateAfterDays
        self.dueAt = dueAt
        self.state = state
    }

    // `due_at` is RFC 3339 UTC whatever the encoder's date strategy: the socket API and
    // `status --json` must agree.
    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        ageDays = try container.decode(Int.self, forKey: .ageDays)
        rotateAfterDays = try container.decode(Int.self, forKey: .rotateAfterDays)
        state = try container.decode(RotationState.self, forKey: .state)
        let text = try container.decode(String.self, forKey: .dueAt)
        guard let date = try? Date(text, strategy: .iso8601) else {
            throw DecodingError.dataCorruptedError(forKey: .dueAt, in: container, debugDescription: "not RFC 3339: \(text)")
        }
        dueAt = date
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(ageDays, forKey: .ageDays)
        try container.encode(rotateAfterDays, forKey: .rotateAfterDays)
        try container.encode(dueAt.formatted(.iso8601), forKey: .dueAt)
        try container.encode(state, forKey: .state)
    }

    /// True when a reminder is due (`due_soon` or `overdue`).
    public var needsReminder: Bool { state != .ok }

    /// One line for a person, with the command to run. Nil when nothing is due.
    public func reminder(profile: String) -> String? {
        guard needsReminder else { return nil }
        let due = Self.day(dueAt)
        let what = state == .overdue
            ? "is \(ageDays) days old and overdue for rotation (due \(due))"
            : "is \(ageDays) days old and due for rotation on \(due)"
        return "the Client Secret of profile '\(profile)' \(what): run `rc-agent rotate --profile \(profile)`"
    }

    package static func day(_ date: Date) -> String {
        date.formatted(.iso8601.year().month().day())
    }
}
