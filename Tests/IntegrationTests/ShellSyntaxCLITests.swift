import Foundation
import RCAgentCore
import RCAgentTestSupport
import Testing

// Nested in AgentCLITests, whose `.serialized` then runs these one at a time with its own tests:
// each of them starts agents and many processes, which the whole suite's other parallel tests
// (doctor's 5 s agent check among them) must not be starved by.
extension AgentCLITests {
    /// `rc-agent start`/`stop` print what the user's shell evaluates, like `ssh-agent -s`/`-c`: each
    /// output is evaluated by the real shell (sh and bash always; tcsh and fish where installed),
    /// on a socket path with a space, a quote and a `!`.
    @Suite(.serialized, .enabled(if: hasPrivateKeyring, "needs scripts/with-keyring.sh (make test)"))
    struct ShellSyntaxCLITests {
        /// One shell: how it runs a script, and how that script evaluates `rc-agent ARGS`' output.
        struct Shell: Sendable {
            let path: String
            let flag: String
            /// A script that evaluates `rc-agent start|stop FLAG --socket "$S"` and prints RC_AGENT_SOCK.
            let evaluate: @Sendable (_ command: String) -> String
        }

        static let shells: [Shell] = [
            Shell(path: "/bin/sh", flag: "-s") { #"eval "$(rc-agent \#($0) -s --socket "$S")"; printenv RC_AGENT_SOCK || echo unset"# },
            Shell(path: "/bin/bash", flag: "--sh") { #"eval "$(rc-agent \#($0) --sh --socket "$S")"; printenv RC_AGENT_SOCK || echo unset"# },
            // tcsh history-expands a `!` coming out of backquotes, so the csh test sources the output.
            Shell(path: "/usr/bin/tcsh", flag: "-c") {
                #"rc-agent \#($0) -c --socket $S:q > $T:q && source $T:q; printenv RC_AGENT_SOCK || echo unset"#
            },
            Shell(path: "/usr/bin/fish", flag: "--fish") {
                #"rc-agent \#($0) --fish --socket $S | source; printenv RC_AGENT_SOCK; or echo unset"#
            },
        ]

        static func run(_ world: AgentWorld, _ shell: Shell, _ script: String, socket: String, env: [String: String] = [:])
            async throws -> CLIResult
        {
            var environment = world.sandbox.environment.merging(env) { $1 }
            environment["PATH"] = Binaries.directory.path + ":" + (environment["PATH"] ?? "/usr/bin:/bin")
            environment["S"] = socket
            environment["T"] = world.sandbox.root + "/state/eval.out"
            let result = try await runProcess(shell.path, ["-c", script], environment: environment)
            world.record(result)
            return result
        }

        /// One agent for all shells: the first `start` spawns it, the others find it running and
        /// print the same line; the first `stop` ends it, the others print the line for no agent.
        @Test func eachShellEvaluatesStartAndStop() async throws {
            try await AgentWorld.run { world in
                let socket = world.sandbox.root + "/run/it's !x/agent.sock"
                let installed = Self.shells.filter { FileManager.default.isExecutableFile(atPath: $0.path) }
                #expect(installed.count >= 2, "sh and bash at least")
                for shell in installed {
                    let started = try await Self.run(world, shell, shell.evaluate("start"), socket: socket)
                    #expect(started.status == 0, "\(shell.path): \(started)")
                    #expect(started.stdout == socket + "\n", "\(shell.path) sets RC_AGENT_SOCK: \(started)")
                    #expect(AgentSocket.probe(socket) == .live, "\(shell.path)")
                }
                for shell in installed {
                    let stopped = try await Self.run(
                        world, shell, shell.evaluate("stop"), socket: socket, env: ["RC_AGENT_SOCK": socket])
                    #expect(stopped.status == 0, "\(shell.path): \(stopped)")
                    #expect(stopped.stdout == "unset\n", "\(shell.path) removes RC_AGENT_SOCK: \(stopped)")
                    #expect(AgentSocket.probe(socket) != .live, "\(shell.path)")
                }
            }
        }

        @Test func withoutAFlagTheSyntaxFollowsSHELL() async throws {
            let sandbox = try Sandbox()
            defer { sandbox.remove() }
            let expected = [
                "/bin/bash": "unset RC_AGENT_SOCK;\n", "/bin/zsh": "unset RC_AGENT_SOCK;\n", "": "unset RC_AGENT_SOCK;\n",
                "/bin/tcsh": "unsetenv RC_AGENT_SOCK;\n", "/usr/bin/csh": "unsetenv RC_AGENT_SOCK;\n",
                "/usr/local/bin/fish": "set -e RC_AGENT_SOCK;\n",
            ]
            for (loginShell, line) in expected {
                let stop = try await sandbox.rcAgent(["stop"], env: ["SHELL": loginShell])
                #expect(stop.status == 0 && stop.stdout == line, "SHELL=\(loginShell): \(stop)")
            }
            let flagWins = try await sandbox.rcAgent(["stop", "--fish"], env: ["SHELL": "/bin/tcsh"])
            #expect(flagWins.stdout == "set -e RC_AGENT_SOCK;\n", "\(flagWins)")
            let two = try await sandbox.rcAgent(["stop", "-s", "-c"])
            #expect(two.status == 64, "\(two)")
        }
    }
}
