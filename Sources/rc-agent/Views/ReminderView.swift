import FoundationEssentials
import RCAgentCore
import RCAgentLive

/// The one-line rotation reminder that `token` and `exec` print on stderr (never stdout, which
/// scripts capture): only when the secret is due soon or overdue, at most once a day per profile
/// and user, and never with `RC_AGENT_NO_REMINDERS=1`.
enum ReminderView {
    /// Prints the reminder for `token`'s profile when one is due.
    static func emit(for token: TokenResponse, settings: Settings, now: Date = Date()) {
        emit(for: token, environment: settings.environment, now: now)
    }

    /// ``emit(for:settings:now:)`` from the environment alone (`token` reads no config when the agent answers).
    static func emit(for token: TokenResponse, environment: [String: String], now: Date = Date()) {
        guard environment["RC_AGENT_NO_REMINDERS"] != "1",
            let line = token.rotation?.reminder(profile: token.profile),
            ReminderLedger(directory: Settings.stateDirectory(environment: environment), channel: "cli")
                .claim(profile: token.profile, now: now)
        else { return }
        Terminal.standardError.write("rc-agent: " + line + "\n")
    }
}
