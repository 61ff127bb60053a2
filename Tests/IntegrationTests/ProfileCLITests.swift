import Foundation
import RCAgentCore
import RCAgentTestSupport
import RiskCloudStandIn
import Testing

// Nested in AgentCLITests, whose `.serialized` then runs these one at a time with its own tests:
// each of them starts agents and many processes, which the whole suite's other parallel tests
// (doctor's 5 s agent check among them) must not be starved by.
extension AgentCLITests {
    /// `rc-agent profile list` / `profiles` and `profile use`, through the built binary, the real
    /// keyring and config file, and a running agent.
    ///
    /// The keyring is the suite's: other tests' profiles can show up in the list, so every check is
    /// about this world's own line.
    @Suite(.serialized, .enabled(if: hasPrivateKeyring, "needs scripts/with-keyring.sh (make test)"))
    struct ProfileCLITests {
        /// The text line of `profile` in `output` (columns split on runs of spaces).
        static func line(_ profile: String, in output: String) -> [String]? {
            output.split(separator: "\n").map { $0.split(separator: " ").map(String.init) }
                .first { $0.contains(profile) }
        }

        @Test func listShowsEachProfileAndTheAgentsTokenWithoutStartingAnAgent() async throws {
            try await AgentWorld.run { world in
                let idle = try await world.rcAgent(["profile", "list"])
                #expect(idle.status == 0, "\(idle)")
                #expect(idle.stdout.hasPrefix("   PROFILE"), "a header first: \(idle)")
                let line = try #require(Self.line(world.profile, in: idle.stdout), "\(idle)")
                let id = world.session.clientID
                #expect(line == [world.profile, world.url, "\(id.prefix(4))…\(id.suffix(4))", "secret-service", "0d", "ok", "(no", "agent)"],
                    "\(idle)")
                #expect(AgentSocket.probe(world.socket) == .absent, "list never starts an agent")

                try await world.start()
                #expect(try await world.token().status == 200)
                let alias = try await world.rcAgent(["profiles"])
                #expect(alias.status == 0, "\(alias)")
                let running = try #require(Self.line(world.profile, in: alias.stdout), "\(alias)")
                #expect(running.suffix(2).first == "valid", "\(alias)")

                let json = try await world.rcAgent(["profile", "list", "--json"])
                #expect(json.status == 0, "\(json)")
                let document = try #require(try JSONSerialization.jsonObject(with: Data(json.stdout.utf8)) as? [String: Any])
                #expect(document["agent_running"] as? Bool == true)
                #expect(document["config"] as? String == world.sandbox.configPath)
                let entries = try #require(document["profiles"] as? [[String: Any]])
                let entry = try #require(entries.first { $0["profile"] as? String == world.profile }, "\(json.stdout)")
                #expect(entry["url"] as? String == world.url)
                #expect(entry["secret"] as? String == "secret-service")
                #expect(entry["keyring"] as? String == "ok")
                #expect(entry["secret_age_days"] as? Int == 0)
                #expect((entry["rotation"] as? [String: Any])?["state"] as? String == "ok")
                #expect((entry["token"] as? [String: Any])?["state"] as? String == "valid")
                #expect(entry["active"] as? Bool == false && entry["default"] as? Bool == false, "'default' is the default")
            }
        }

        @Test func useMakesTheProfileTheDefaultKeepsTheConfigAndTellsTheAgent() async throws {
            try await AgentWorld.run { world in
                let config = world.sandbox.configPath
                let before = try String(contentsOfFile: config, encoding: .utf8)
                try ("# my settings\n[defaults]\nkeyring_timeout = 20 # seconds\n\n" + before)
                    .write(toFile: config, atomically: true, encoding: .utf8)
                let written = try String(contentsOfFile: config, encoding: .utf8)
                try await world.start()
                let unnamed = try await world.curl("/v1/token")
                #expect(unnamed.status == 404 && unnamed.errorCode == "unknown_profile", "no 'default' yet: \(unnamed.body)")

                let nobody = "nobody-" + String(UUID().uuidString.prefix(6)).lowercased()
                let refused = try await world.rcAgent(["profile", "use", nobody])
                #expect(refused.status == 2, "\(refused)")
                #expect(refused.stderr.contains("no credentials stored for profile '\(nobody)'"), "\(refused)")
                #expect(try String(contentsOfFile: config, encoding: .utf8) == written, "a refused use leaves the config alone")
                #expect(try await world.rcAgent(["profile", "use", "bad name"]).status == 64)

                let used = try await world.rcAgent(["profile", "use", world.profile])
                #expect(used.status == 0, "\(used)")
                #expect(used.stderr.contains("default profile is now '\(world.profile)'"), "\(used)")
                #expect(used.stderr.contains("the running agent re-read the config"), "\(used)")
                let after = try String(contentsOfFile: config, encoding: .utf8)
                #expect(after == written.replacingOccurrences(
                    of: "[defaults]\n", with: "[defaults]\nprofile = \"\(world.profile)\"\n"), "only the one line added:\n\(after)")

                // The CLI without --profile, and the agent without ?profile=, both mean the new default.
                let token = try await world.rcAgent(["token"], stdoutHoldsToken: true)
                #expect(token.status == 0, "\(token)")
                let served = try await world.curl("/v1/token?format=text")
                #expect(served.status == 200 && served.body == token.stdout, "the agent was told: \(served.body)")
                let list = try await world.rcAgent(["profile", "list"])
                #expect(Self.line(world.profile, in: list.stdout)?.first == "*", "\(list)")

                // Changing it again replaces the line instead of adding one.
                let again = try await world.rcAgent(["profile", "use", world.profile])
                #expect(again.status == 0, "\(again)")
                #expect(try String(contentsOfFile: config, encoding: .utf8) == after)
            }
        }
    }
}
