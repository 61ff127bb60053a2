import Foundation
import RCAgentTestSupport
import RiskCloudStandIn
import Testing

// Nested in AgentCLITests, whose `.serialized` then runs these one at a time with its own tests:
// each of them starts agents and many processes, which the whole suite's other parallel tests
// (doctor's 5 s agent check among them) must not be starved by.
extension AgentCLITests {
    /// `rc-agent token --format …`, `--refresh` and `exec`'s environment, as the consuming tools use
    /// them: curl reading the header from stdin, a shell sourcing the env lines.
    @Suite(.serialized, .enabled(if: hasPrivateKeyring, "needs scripts/with-keyring.sh (make test)"))
    struct TokenFormatsCLITests {
        /// `sh -c SCRIPT` in the sandbox, with the built rc-agent first on PATH.
        static func shell(_ world: AgentWorld, _ script: String, stdoutHoldsToken: Bool = false) async throws -> CLIResult {
            var environment = world.sandbox.environment
            environment["PATH"] = Binaries.directory.path + ":" + (environment["PATH"] ?? "/usr/bin:/bin")
            environment["P"] = world.profile
            let result = try await runProcess("/bin/sh", ["-c", script], environment: environment)
            world.record(result, stdoutHoldsToken: stdoutHoldsToken)
            return result
        }

        @Test func everyFormatHoldsTheSameTokenInTheShapeItsConsumerReads() async throws {
            try await AgentWorld.run { world in
                try await world.start()
                let text = try await world.tokenCLI()
                #expect(text.status == 0, "\(text)")
                let token = text.stdout.trimmingCharacters(in: .newlines)
                #expect(!token.isEmpty && text.stdout == token + "\n")
                #expect(try await world.tokenCLI(["--format", "text"]).stdout == text.stdout)

                let header = try await world.tokenCLI(["--format", "header"])
                #expect(header.status == 0 && header.stdout == "Authorization: Bearer \(token)\n", "\(header)")
                let env = try await world.tokenCLI(["--format", "env"])
                #expect(env.status == 0 && env.stdout == "RC_TOKEN=\(token)\nRC_URL=\(world.url)\n", "\(env)")
                for arguments in [["--format", "json"], ["--json"], ["--json", "--format", "json"]] {
                    let json = try await world.tokenCLI(arguments)
                    #expect(json.status == 0, "\(arguments): \(json)")
                    let parsed = try JSONSerialization.jsonObject(with: Data(json.stdout.utf8)) as? [String: Any]
                    #expect(parsed?["access_token"] as? String == token, "\(arguments)")
                    #expect(parsed?["url"] as? String == world.url, "\(arguments)")
                }

                let conflicting = try await world.tokenCLI(["--json", "--format", "header"])
                #expect(conflicting.status == 64 && conflicting.stdout.isEmpty, "\(conflicting)")
                let unknown = try await world.tokenCLI(["--format", "yaml"])
                #expect(unknown.status == 64 && unknown.stdout.isEmpty, "\(unknown)")

                // curl takes the header from stdin: the token is in no argv.
                let before = await world.state.apiRequestCount
                let curl = try await Self.shell(
                    world, #"rc-agent token --format header --profile "$P" | curl -sS --fail -H @- "$U/api/v2/records""#
                        .replacingOccurrences(of: "$U", with: world.url))
                #expect(curl.status == 0, "\(curl)")
                #expect(curl.stdout.contains("\"content\""), "\(curl)")
                #expect(await world.state.apiRequestCount == before + 1)
                #expect(await world.state.lastAPIAuthorizationHeaders().last == "Bearer \(token)")

                // `set -a; . <(…)` without bash's process substitution: eval in POSIX sh.
                let sourced = try await Self.shell(
                    world, #"set -a; eval "$(rc-agent token --format env --profile "$P")"; sh -c 'echo "$RC_URL"; echo "${#RC_TOKEN}"'"#)
                #expect(sourced.status == 0, "\(sourced)")
                #expect(sourced.stdout == "\(world.url)\n\(token.count)\n", "exported to children: \(sourced)")
            }
        }

        @Test func refreshFetchesANewTokenEvenWhileTheHeldOneIsValid() async throws {
            try await AgentWorld.run { world in
                try await world.start()
                await world.state.setReuseLiveToken(false)
                let first = try await world.tokenCLI()
                #expect(first.status == 0, "\(first)")
                let requests = await world.state.tokenRequestCount
                #expect(try await world.tokenCLI().stdout == first.stdout, "a valid held token is served from memory")
                #expect(await world.state.tokenRequestCount == requests)

                // Someone generated a token elsewhere for the same Client ID: the held one is dead.
                await world.state.revokeAllTokens()
                let refreshed = try await world.tokenCLI(["--refresh"])
                #expect(refreshed.status == 0, "\(refreshed)")
                #expect(await world.state.tokenRequestCount == requests + 1, "one POST to the token endpoint")
                #expect(refreshed.stdout != first.stdout, "a new token")
                #expect(try await world.tokenCLI().stdout == refreshed.stdout, "and the agent holds it from now on")
                let header = try await world.tokenCLI(["--refresh", "--format", "header"])
                #expect(header.status == 0 && header.stdout.hasPrefix("Authorization: Bearer "), "\(header)")

                let both = try await world.tokenCLI(["--refresh", "--min-valid", "30"])
                #expect(both.status == 64, "\(both)")
            }
        }

        /// `token` asks a running agent before it reads the config file (it is a whole process on
        /// every script's path): a config that does not parse stops neither `token` nor the agent,
        /// which keeps its last good config. With `--config`, or with no agent to ask, the file is
        /// read and its error is what the command says.
        @Test func tokenAsksTheRunningAgentBeforeReadingTheConfig() async throws {
            try await AgentWorld.run { world in
                try await world.start()
                let first = try await world.tokenCLI()
                #expect(first.status == 0, "\(first)")
                let path = world.sandbox.configPath
                let good = try? String(contentsOfFile: path, encoding: .utf8)
                defer {
                    if let good { try? good.write(toFile: path, atomically: true, encoding: .utf8) } else { unlink(path) }
                }
                try "[profiles\nthis is not TOML\n".write(toFile: path, atomically: true, encoding: .utf8)

                let answered = try await world.tokenCLI()
                #expect(answered.status == 0 && answered.stdout == first.stdout, "\(answered)")
                let json = try await world.tokenCLI(["--json", "--min-valid", "30"])
                #expect(json.status == 0 && json.stdout.contains("\"profile\":\"\(world.profile)\""), "\(json)")

                let named = try await world.tokenCLI(["--config", path])
                #expect(named.status == 1 && named.stdout.isEmpty && named.stderr.contains(path), "\(named)")
                #expect(try await world.rcAgent(["stop"]).status == 0)
                let unstarted = try await world.tokenCLI()
                #expect(unstarted.status == 1 && unstarted.stdout.isEmpty && unstarted.stderr.contains(path), "\(unstarted)")
            }
        }

        @Test func execSetsTheProfileForNestedTools() async throws {
            try await AgentWorld.run { world in
                try await world.start()
                let token = try #require(try await world.token().json?["access_token"] as? String)
                // The nested rc-agent has no --profile: RC_PROFILE from exec selects the same profile.
                let nested = try await Self.shell(
                    world, #"rc-agent exec --profile "$P" -- sh -c 'echo "$RC_PROFILE"; rc-agent token --format env'"#,
                    stdoutHoldsToken: true)
                #expect(nested.status == 0, "\(nested)")
                #expect(nested.stdout == "\(world.profile)\nRC_TOKEN=\(token)\nRC_URL=\(world.url)\n", "\(nested)")
            }
        }
    }
}
