import Foundation
import Testing

@testable import RCAgentClient
@testable import RCAgentCore
@testable import RCAgentDaemon
@testable import RCAgentLive
import RCAgentTestSupport

@Suite struct RotationPolicyTests {
    let created = Date(timeIntervalSince1970: 1_700_000_000)
    let day = 86_400.0

    @Test func statesAcrossTheSecretsLife() {
        let policy = RotationPolicy(rotateAfterDays: 90, remindBeforeDays: 14)
        let fresh = policy.status(created: created, now: created.addingTimeInterval(10 * day))
        #expect(fresh.state == .ok)
        #expect(fresh.ageDays == 10)
        #expect(fresh.dueAt == created.addingTimeInterval(90 * day))
        #expect(fresh.reminder(profile: "p") == nil)

        // The reminder window opens exactly 14 days before the due date.
        #expect(policy.status(created: created, now: created.addingTimeInterval(76 * day - 1)).state == .ok)
        let soon = policy.status(created: created, now: created.addingTimeInterval(76 * day))
        #expect(soon.state == .dueSoon)
        #expect(soon.reminder(profile: "p")?.contains("rc-agent rotate --profile p") == true)

        #expect(policy.status(created: created, now: created.addingTimeInterval(90 * day - 1)).state == .dueSoon)
        let overdue = policy.status(created: created, now: created.addingTimeInterval(90 * day))
        #expect(overdue.state == .overdue)
        #expect(overdue.reminder(profile: "p")?.contains("overdue") == true)
    }

    @Test func zeroDaysMakesASecretOverdueAtOnce() {
        let policy = RotationPolicy(rotateAfterDays: 0, remindBeforeDays: 14)
        #expect(policy.status(created: created, now: created).state == .overdue)
    }

    @Test func ageNeverNegativeWhenTheClockIsBehind() {
        let status = RotationPolicy().status(created: created, now: created.addingTimeInterval(-5 * day))
        #expect(status.ageDays == 0)
        #expect(status.state == .ok)
    }

    @Test func policyComesFromProfileThenDefaultsThenBuiltIns() throws {
        let config = try ConfigFile.parse(
            """
            [defaults]
            rotate_after_days = 60
            [profiles.a]
            url = "https://a.logicgate.com"
            remind_before_days = 3
            [profiles.b]
            url = "https://b.logicgate.com"
            rotate_after_days = 30
            """, path: "c.toml")
        #expect(RotationPolicy(config: config, profile: "a") == RotationPolicy(rotateAfterDays: 60, remindBeforeDays: 3))
        #expect(RotationPolicy(config: config, profile: "b") == RotationPolicy(rotateAfterDays: 30, remindBeforeDays: 14))
        #expect(RotationPolicy(config: ConfigFile(), profile: "x") == RotationPolicy(rotateAfterDays: 90, remindBeforeDays: 14))
    }

    @Test func jsonShape() throws {
        let status = RotationPolicy(rotateAfterDays: 90, remindBeforeDays: 14)
            .status(created: created, now: created.addingTimeInterval(80 * day))
        let encoder = JSONEncoder()
        encoder.dateEncodingStrategy = .iso8601
        let object = try #require(
            JSONSerialization.jsonObject(with: encoder.encode(status)) as? [String: Any])
        #expect(Set(object.keys) == ["age_days", "rotate_after_days", "due_at", "state"])
        #expect(object["state"] as? String == "due_soon")
        #expect(object["age_days"] as? Int == 80)
        #expect(object["due_at"] as? String == "2024-02-12T22:13:20Z")
    }

    @Test func ledgerRemindsOncePerDayPerProfile() throws {
        let dir = NSTemporaryDirectory() + "rc-ledger-" + UUID().uuidString
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let ledger = ReminderLedger(directory: dir, channel: "cli")
        #expect(ledger.claim(profile: "a", now: created))
        #expect(!ledger.claim(profile: "a", now: created.addingTimeInterval(day - 1)))
        #expect(ledger.claim(profile: "b", now: created.addingTimeInterval(60)))
        #expect(ledger.claim(profile: "a", now: created.addingTimeInterval(day)))
        // Channels are independent: the desktop notification does not use up the CLI's reminder.
        #expect(ReminderLedger(directory: dir, channel: "desktop").claim(profile: "a", now: created))
        let text = try String(contentsOfFile: ledger.path, encoding: .utf8)
        #expect(!text.contains("secret"))
        let mode = try FileManager.default.attributesOfItem(atPath: ledger.path)[.posixPermissions] as? Int
        #expect(mode == 0o600)
    }
}
