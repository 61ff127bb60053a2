import Logging
import RCAgentCore
import ServiceLifecycle

/// Rotation housekeeping: at start, finishes interrupted rotations; then reminders at start and
/// once a day, until shutdown. Nothing when reminders are not configured (test runtimes).
struct RemindersService: Service {
    let reminders: RotationReminders?
    let store: any CredentialStore
    let managed: @Sendable (String) -> Bool
    let logger: Logger
    /// How long after start the housekeeping begins.
    var startDelay: Duration = .milliseconds(500)

    func run() async throws {
        guard let reminders else { return }
        // The keyring calls below run in helper processes (tens of ms, seconds on a busy machine):
        // an agent told to stop right after it started does not wait for them, and one started
        // for a command answers that command first (its own helper for the secret included).
        try? await cancelWhenGracefulShutdown {
            try await Task.sleep(for: startDelay)
            for profile in await RotationService.finishInterrupted(store: store, managed: managed) {
                logger.notice("finished an interrupted rotation: kept the newest secret", metadata: ["profile": "\(profile)"])
            }
            try await reminders.run()
        }
    }
}
