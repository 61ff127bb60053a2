import CLibSecret
import Foundation
import Logging
import Testing

@testable import RCAgentClient
@testable import RCAgentCore
@testable import RCAgentDaemon
@testable import RCAgentLive
import RCAgentTestSupport

/// The desktop channel of rotation reminders: the real GDBus call to a notification service on the
/// private test bus (scripts/test-notification-service.py records what it receives), and the
/// agent's daily pass over the real keyring.
@Suite(
    .serialized,
    .enabled(if: ProcessInfo.processInfo.environment["RC_SANDBOX"] != nil, "needs scripts/with-keyring.sh (make test)"))
struct RotationRemindersTests {
    /// Starts the recording notification service; returns it and its record file.
    func startNotificationService() async throws -> (process: ChildProcess, record: String) {
        let record = NSTemporaryDirectory() + "notifications-" + UUID().uuidString + ".jsonl"
        let process = try await ChildProcess(["scripts/test-notification-service.py", record], stdout: .pipe, stderr: .inherited)
        // "ready" is printed once the service owns its name on the bus.
        let line = await onOwnThread { process.output.availableData }
        #expect(String(decoding: line, as: UTF8.self).hasPrefix("ready"))
        return (process, record)
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
        defer { service.process.kill() }
        // Agents of other suites share this bus and may notify too: look for ours only.
        let summary = "Rotate " + UUID().uuidString
        #expect(await FreedesktopNotifier().notify(summary: summary, body: "the body") == true)
        let received = notifications(in: service.record).filter { $0["summary"] == summary }
        #expect(received.count == 1)
        #expect(received.first?["app"] == "rc-agent")
        #expect(received.first?["body"] == "the body")
    }

    /// The daily pass over the real keyring, with a notifier that records what *this* pass sent
    /// (the D-Bus delivery itself is the test above; agents of other suites share the bus).
    ///
    /// The pass lists every item of the keyring. In the keyring the other suites fill and empty at
    /// the same time, that listing outlasted the keyring timeout on a loaded 2-core machine; so the
    /// test re-runs itself, filtered to this test, under its own scripts/with-keyring.sh.
    @Test func dailyPassWarnsAndNotifiesOncePerDayForDueProfilesOnly() async throws {
        if ProcessInfo.processInfo.environment[Self.isolatedPass] == "1" {
            try await dailyPassInThisKeyring()
            return
        }
        let child = IsolatedRun.run(
            filter: "RotationRemindersTests/dailyPassWarnsAndNotifiesOncePerDayForDueProfilesOnly",
            environment: [Self.isolatedPass: "1"])
        #expect(child.status == 0, "isolated daily-pass run failed:\n\(child.output)")
        #expect(child.output.contains("Test run with 1 test"), "the isolated run did not run the test:\n\(child.output)")
    }

    private static let isolatedPass = "RC_TEST_ISOLATED_DAILY_PASS"

    private func dailyPassInThisKeyring() async throws {
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
        let notifier = RecordingNotifier()
        let reminders = RotationReminders(
            store: store, notifier: notifier, clock: clock, stateDirectory: stateDir,
            logger: Logger(label: "test"), policy: { _ in RotationPolicy() }, managed: { [old, fresh].contains($0) })

        let due = await reminders.check()
        #expect(due.map(\.profile).contains(old))
        #expect(!due.map(\.profile).contains(fresh))
        #expect(due.first { $0.profile == old }?.status.state == .overdue)
        var mine = notifier.sent.filter { $0.summary.contains(old) }
        #expect(mine.count == 1)
        #expect(mine.first?.body.contains("rc-agent rotate --profile \(old)") == true)
        #expect(!notifier.sent.contains { $0.summary.contains(fresh) })

        // Same day: warned again in the log, but no second notification — also from a new agent
        // process, since the ledger is on disk.
        await reminders.check()
        let restarted = RotationReminders(
            store: store, notifier: notifier, clock: clock, stateDirectory: stateDir,
            logger: Logger(label: "test"), policy: { _ in RotationPolicy() }, managed: { [old, fresh].contains($0) })
        await restarted.check()
        mine = notifier.sent.filter { $0.summary.contains(old) }
        #expect(mine.count == 1)

        clock.advance(by: 86_400)
        await reminders.check()
        mine = notifier.sent.filter { $0.summary.contains(old) }
        #expect(mine.count == 2)
        #expect(!notifier.sent.contains { $0.body.contains(secret) || $0.summary.contains(secret) })
    }

    /// The same pass through a real notification server: dunst on the X display of
    /// IntegrationTests' DesktopUnlockTests, which shows the reminder as a person sees it (the
    /// screenshot is in .build/test-artefacts/desktop/rotation-reminder.png).
    @Test(.enabled(if: Desktop.session == "x11", "runs inside DesktopUnlockTests' X session"))
    func dunstShowsTheReminderOnTheDesktop() async throws {
        let stateDir = NSTemporaryDirectory() + "rc-reminders-" + UUID().uuidString
        try FileManager.default.createDirectory(atPath: stateDir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: stateDir) }
        let dunst = try BackgroundProcess(
            "/usr/bin/dunst", [], environment: ProcessInfo.processInfo.environment, logPath: stateDir + "/dunst.log")
        defer { dunst.kill() }
        var owned = false
        for _ in 0..<300 where !owned {
            owned = rc_bus_name_has_owner("org.freedesktop.Notifications", 1_000) == 1
            if !owned { try await Task.sleep(nanoseconds: 100_000_000) }
        }
        try #require(owned, "dunst did not take org.freedesktop.Notifications:\n\(dunst.log)")

        let store = LibSecretStore(timeout: 10)
        let profile = "rm-desk-" + String(UUID().uuidString.prefix(6)).lowercased()
        let now = Date()
        try await store.save(StoredCredential(
            profile: profile, clientID: "c", url: "https://acme.logicgate.com",
            secret: Secret("reminder-secret-" + UUID().uuidString), created: now.addingTimeInterval(-100 * 86_400)))
        defer { Task { try? await store.delete(profile: profile) } }
        let reminders = RotationReminders(
            store: store, notifier: FreedesktopNotifier(), clock: AgentTestClock(start: now), stateDirectory: stateDir,
            logger: Logger(label: "test"), policy: { _ in RotationPolicy() }, managed: { $0 == profile })
        #expect(await reminders.check().map(\.profile) == [profile])
        _ = try await Desktop.waitForWindow(named: "Dunst") { dunst.log }
        try await Desktop.screenshot("rotation-reminder")
    }
}

/// Records the notifications it is asked to show.
final class RecordingNotifier: DesktopNotifier, @unchecked Sendable {
    private let lock = NSLock()
    private var notifications: [(summary: String, body: String)] = []
    var sent: [(summary: String, body: String)] { lock.withLock { notifications } }
    func notify(summary: String, body: String) async -> Bool {
        lock.withLock { notifications.append((summary, body)) }
        return true
    }
}
