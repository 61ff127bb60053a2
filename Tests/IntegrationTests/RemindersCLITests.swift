import Foundation
import RiskCloudStandIn
import RCAgentTestSupport
import Testing

/// Rotation reminders on the command-line channels: `token`/`exec` stderr lines (once a day, never
/// on stdout, silenced by RC_AGENT_NO_REMINDERS=1), the `rotation` object of `GET /v1/token`,
/// `GET /v1/status` and `status --json`, and the agent's log warning.
@Suite(.enabled(if: hasPrivateKeyring, "needs scripts/with-keyring.sh (make test)"))
struct RemindersCLITests {
    @Test func overdueSecretIsRemindedOnStderrOncePerDayAndInEveryJSON() async throws {
        try await LoggedInSession.withLoggedIn { session, state, url in
            // rotate_after_days = 0: a secret is overdue from the moment it is stored.
            let config = try String(contentsOfFile: session.sandbox.configPath, encoding: .utf8)
            try ("[defaults]\nrotate_after_days = 0\n\n" + config)
                .write(toFile: session.sandbox.configPath, atomically: true, encoding: .utf8)
            try await session.startAgent()

            let first = try await session.run(["token"])
            #expect(first.status == 0, "\(first)")
            let token = first.stdout.trimmingCharacters(in: .newlines)
            session.sandbox.leaks.watch(token)
            #expect(first.stdout == token + "\n", "stdout carries the token only")
            #expect(first.stderr.contains("overdue for rotation"), "\(first)")
            #expect(first.stderr.contains("rc-agent rotate --profile \(session.profile)"))

            let second = try await session.run(["token"])
            #expect(second.status == 0)
            #expect(second.stderr.isEmpty, "once a day: \(second.stderr)")

            // Another user's state (a fresh XDG_STATE_HOME) has not been reminded yet…
            let otherState = session.sandbox.root + "/state2"
            let exec = try await session.sandbox.rcAgent(
                ["exec", "--profile", session.profile, "--", "sh", "-c", "test -n \"$RC_TOKEN\""],
                env: ["XDG_STATE_HOME": otherState])
            #expect(exec.status == 0, "\(exec)")
            #expect(exec.stderr.contains("overdue for rotation"))
            // …and RC_AGENT_NO_REMINDERS=1 silences it.
            let quiet = try await session.run(
                ["token"], env: ["XDG_STATE_HOME": session.sandbox.root + "/state3", "RC_AGENT_NO_REMINDERS": "1"])
            #expect(quiet.status == 0)
            #expect(quiet.stderr.isEmpty, "\(quiet.stderr)")

            let json = try await session.run(["token", "--json"])
            let document = try #require(JSONSerialization.jsonObject(with: Data(json.stdout.utf8)) as? [String: Any])
            let rotation = try #require(document["rotation"] as? [String: Any])
            #expect(rotation["state"] as? String == "overdue")
            #expect(rotation["rotate_after_days"] as? Int == 0)
            #expect(rotation["age_days"] as? Int == 0)
            #expect((rotation["due_at"] as? String)?.hasSuffix("Z") == true)

            let status = try await session.run(["status", "--json"])
            let report = try #require(JSONSerialization.jsonObject(with: Data(status.stdout.utf8)) as? [String: Any])
            let local = try #require((report["profiles"] as? [[String: Any]])?.first)
            #expect((local["rotation"] as? [String: Any])?["state"] as? String == "overdue")
            let agent = try #require(report["agent"] as? [String: Any])
            #expect(agent["running"] as? Bool == true)
            let agentProfiles = try #require((agent["status"] as? [String: Any])?["profiles"] as? [[String: Any]])
            let mine = try #require(agentProfiles.first { $0["profile"] as? String == session.profile })
            #expect((mine["rotation"] as? [String: Any])?["state"] as? String == "overdue")
            #expect((mine["token"] as? [String: Any])?["state"] as? String == "valid")

            let human = try await session.run(["status"])
            #expect(human.stdout.contains("rotation:   overdue"))
            #expect(human.stdout.contains("agent: running"))

            let log = try String(contentsOfFile: session.sandbox.root + "/state/rc-agent/agent.log", encoding: .utf8)
            #expect(log.contains("secret rotation due"))
            // `token` prints the token by design; everything else must not.
            try session.sandbox.assertNoLeaks([exec, status, human])
        }
    }
}
