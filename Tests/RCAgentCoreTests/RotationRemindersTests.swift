import Foundation
import Logging
import Testing

@testable import RCAgentCore

/// The desktop channel of rotation reminders: the real GDBus call to a notification service on the
/// private test bus (scripts/test-notification-service.py records what it receives), and the
/// agent's daily pass over the real keyring.
@Suite(
    .serialized,
    .enabled(if: ProcessInfo.processInfo.environment["RC_SANDBOX"] != nil, "needs scripts/with-keyring.sh (make test)"))
struct RotationRemindersTests {
    /// Starts the recording notification service; returns its pid and the record file.
    func startNotificationService() async throws -> (pid: Int32, record: String) {
        let record = NSTemporaryDirectory() + "notifications-" + UUID().uuidString + ".jsonl"
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "scripts/test-notification-service.py")
        process.arguments = [record]
        let out = Pipe()
        process.standardOutput = out
        try process.run()
        // "ready" is printed once the service owns its name on the bus.
        let line = await withCheckedContinuation { continuation in
            Thread.detachNewThread { continuation.resume(returning: out.fileHandleForReading.availableData) }
        }
        #expect(String(decoding: line, as: UTF8.self).hasPrefix("ready"))
        return (process.processIdentifier, record)
    }

    func stop(_ pid: Int32) {
        // SIGKILL: children of the test process inherit a signal mask that blocks SIGTERM.
        kill(pid, SIGKILL)
    }

    func notifications(in record: String) -> [[String: String]] {
        guard let text = try? String(contentsOfFile: record, encoding: .utf8) else { return [] }
        return text.split(separator: "\n").compactMap {
            try? JSONSerialization.jsonObject(with: Data($0.utf8)) as? [String: String]
        }
    }

    @Test func notifierReachesTheServiceAndIsSilentWithoutOne() async throws {
        #expect(await FreedesktopNotifier().notify(summary: "none", body: "nobody listens") == false)
        let service = try await startNotificationService()
        defer { stop(service.pid) }
        #expect(await FreedesktopNotifier().notify(summary: "Rotate", body: "the body") == true)
        let received = notifications(in: service.record)
        #expect(received.count == 1)
        #expect(received.first?["app"] == "rc-agent")
        #expect(received.first?["summary"] == "Rotate")
        #expect(received.first?["body"] == "the body")
    }

    @Test func dailyPassWarnsAndNotifiesOncePerDayForDueProfilesOnly() async throws {
        let service = try await startNotificationService()
        defer { stop(service.pid) }
        let store = LibSecretStore(timeout: 10)
        let old = "rm-old-" + String(UUID().uuidString.prefix(6))
        let fresh = "rm-new-" + String(UUID().uuidString.prefix(6))
        let secret = "reminder-secret-" + UUID().uuidString
        let now = Date()
        try await store.save(StoredCredential(
            profile: old, clientID: "c", url: "http://127.0.0.1:9", secret: Secret(secret),
            created: now.addingTimeInterval(-100 * 86_400)))
        try await store.save(StoredCredential(
            profile: fresh, clientID: "c", url: "http://127.0.0.1:9", secret: Secret(secret), created: now))
        defer { Task { try? await store.delete(profile: old); try? await store.delete(profile: fresh) } }

        let stateDir = NSTemporaryDirectory() + "rc-reminders-" + UUID().uuidString
        defer { try? FileManager.default.removeItem(atPath: stateDir) }
        let clock = AgentTestClock(start: now)
        let reminders = RotationReminders(
            store: store, notifier: FreedesktopNotifier(), clock: clock, stateDirectory: stateDir,
            logger: Logger(label: "test"), policy: { _ in RotationPolicy() })

        let due = await reminders.check()
        #expect(due.map(\.profile).contains(old))
        #expect(!due.map(\.profile).contains(fresh))
        #expect(due.first { $0.profile == old }?.status.state == .overdue)
        var mine = notifications(in: service.record).filter { $0["summary"]?.contains(old) == true }
        #expect(mine.count == 1)
        #expect(mine.first?["body"]?.contains("rc-agent rotate --profile \(old)") == true)
        #expect(!notifications(in: service.record).contains { $0["summary"]?.contains(fresh) == true })

        // Same day: warned again in the log, but no second notification.
        await reminders.check()
        mine = notifications(in: service.record).filter { $0["summary"]?.contains(old) == true }
        #expect(mine.count == 1)

        clock.advance(by: 86_400)
        await reminders.check()
        mine = notifications(in: service.record).filter { $0["summary"]?.contains(old) == true }
        #expect(mine.count == 2)
        #expect(!(try String(contentsOfFile: service.record, encoding: .utf8)).contains(secret))
    }
}
