import FoundationEssentials

/// Remembers when each profile was last reminded, so a reminder shows at most once a day per
/// profile and channel. Kept in `$XDG_STATE_HOME/rc-agent/reminders.json` (times only, never a
/// secret); an unreadable ledger means "never reminded" and a failed write is ignored, because a
/// reminder is never worth failing a command for.
public struct ReminderLedger: Sendable {
    public let path: String
    /// The least time between two reminders for one profile on one channel.
    public static let interval: TimeInterval = 86_400

    public init(directory: String, channel: String) {
        path = directory + "/reminders-\(channel).json"
    }

    /// True, and the time recorded, when `profile` was not reminded on this channel in the last day.
    public func claim(profile: String, now: Date) -> Bool {
        var entries = read()
        if let last = entries[profile], now.timeIntervalSince1970 - last < Self.interval { return false }
        entries[profile] = now.timeIntervalSince1970
        write(entries)
        return true
    }

    private func read() -> [String: Double] {
        guard let data = FileManager.default.contents(atPath: path),
            let entries = try? JSONDecoder().decode([String: Double].self, from: data)
        else { return [:] }
        return entries
    }

    private func write(_ entries: [String: Double]) {
        guard let data = try? JSONEncoder().encode(entries) else { return }
        let directory = PathText.directory(of: path)
        try? PrivateFiles.makeDirectory(directory)
        let name = PathText.name(of: path)
        guard let temp = try? PrivateFiles.writeTemporary(data, in: directory, prefix: "." + name) else { return }
        try? PrivateFiles.replace(path, with: temp)
    }
}
