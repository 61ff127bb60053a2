import FoundationEssentials
import Logging

/// The agent's rotation reminders: at start and then once a day, for each of its profiles whose
/// secret is due soon or overdue, a warning in the log and (once a day per profile, remembered
/// across restarts) a desktop notification. Reads only the keyring items' attributes, never a secret.
public struct RotationReminders: Sendable {
    let store: any CredentialStore
    let notifier: any DesktopNotifier
    let clock: any AgentClock
    let ledger: ReminderLedger
    let policy: @Sendable (String) -> RotationPolicy
    let managed: @Sendable (String) -> Bool
    let logger: Logger

    /// - Parameters:
    ///   - policy: the rotation policy of a profile (re-read on SIGHUP by the caller).
    ///   - managed: which stored profiles are this agent's (its config's), so an agent does not
    ///     remind about another config's profiles.
    public init(
        store: any CredentialStore, notifier: any DesktopNotifier, clock: any AgentClock, stateDirectory: String,
        logger: Logger, policy: @escaping @Sendable (String) -> RotationPolicy,
        managed: @escaping @Sendable (String) -> Bool
    ) {
        self.managed = managed
        self.store = store
        self.notifier = notifier
        self.clock = clock
        self.ledger = ReminderLedger(directory: stateDirectory, channel: "desktop")
        self.policy = policy
        self.logger = logger
    }

    /// One pass over the stored profiles. Returns the profiles that were due, with their status.
    @discardableResult
    public func check() async -> [(profile: String, status: RotationStatus)] {
        guard let summaries = try? await store.list() else { return [] }
        let now = clock.now()
        var due: [(String, RotationStatus)] = []
        for summary in summaries where managed(summary.profile) {
            guard let created = summary.created else { continue }
            let status = policy(summary.profile).status(created: created, now: now)
            guard let line = status.reminder(profile: summary.profile) else { continue }
            due.append((summary.profile, status))
            logger.warning(
                "secret rotation due",
                metadata: [
                    "profile": .string(summary.profile), "state": .string(status.state.rawValue),
                    "age_days": .stringConvertible(status.ageDays), "hint": .string(line),
                ])
            if ledger.claim(profile: summary.profile, now: now) {
                _ = await notifier.notify(
                    summary: "Risk Cloud secret: rotate profile '\(summary.profile)'",
                    body: line)
            }
        }
        return due
    }

    /// Checks now and then every day until cancelled.
    public func run() async throws {
        while !Task.isCancelled {
            await check()
            try await clock.sleep(seconds: ReminderLedger.interval)
        }
    }
}
