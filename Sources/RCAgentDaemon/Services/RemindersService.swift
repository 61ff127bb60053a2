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

    func run() async throws {
        guard let reminders else { return }
        for profile in await RotationService.finishInterrupted(store: store, managed: managed) {
            logger.notice("finished an interrupted rotation: kept the newest secret", metadata: ["profile": "\(profile)"])
        }
        try? await cancelWhenGracefulShutdown { try await reminders.run() }
    }
}
