import Foundation
import RCAgentCore
import RCAgentTestSupport
import RiskCloudStandIn
import Testing

#if canImport(Glibc)
import Glibc
#endif

extension HardeningTests {
    /// The client trusts only its own agent: a socket in a directory that is not a private directory
    /// of this user, or served by a process of another uid, is refused with exit 3 before any request
    /// is sent — by every command that talks to the agent.
    @Suite struct SocketTrustTests {
        /// Every command that talks to the agent, run against whatever is on the sandbox's socket.
        private static func everyAgentCommand(_ world: AgentWorld, env: [String: String] = [:]) async throws
            -> [(String, CLIResult)]
        {
            let session = world.session
            var results: [(String, CLIResult)] = []
            func run(_ name: String, _ arguments: [String], stdin: String? = nil) async throws {
                let result = try await session.run(arguments, stdin: stdin, env: env)
                world.record(result)
                results.append((name, result))
            }
            try await run("token", ["token"])
            try await run("exec", ["exec", "--", "sh", "-c", #"echo "URL=$RC_URL TOKEN=$RC_TOKEN""#])
            try await run("api", ["api", "/api/v2/records"])
            try await run("status", ["status"])
            try await run("start", ["start"])
            try await run("stop", ["stop"])
            let login = try await session.attemptLogin(world.url)
            world.record(login)
            results.append(("login", login))
            let newSecret = "rotated-" + UUID().uuidString
            world.sandbox.leaks.watch(newSecret)
            await world.state.resetSecret(clientID: session.clientID, newSecret: newSecret)
            try await run("rotate", ["rotate", "--client-secret-stdin"], stdin: newSecret + "\n")
            try await run("logout", ["logout"])
            return results
        }

        @Test(.enabled(if: getuid() == 0, "runs the fake agent as uid 65534 with setpriv, which needs root"))
        func aFakeAgentOfAnotherUserOnOurSocketIsRefusedBeforeAnyRequest() async throws {
            try await AgentWorld.run { world in
                let fake = try await ForeignAgent(uid: 65534, mode: 0o700, logPath: world.sandbox.root + "/state/fake.log")
                defer { fake.stop() }
                // Our own private directory, so only the peer check can tell.
                let directory = (world.socket as NSString).deletingLastPathComponent
                try FileManager.default.createDirectory(
                    atPath: directory, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
                try fake.move(to: world.socket)

                for (name, result) in try await Self.everyAgentCommand(world, env: ["RC_AGENT_NO_AUTOSTART": "0"]) {
                    #expect(result.status == 3, "\(name): \(result)")
                    #expect(result.stderr.contains("refusing the agent on \(world.socket)"), "\(name): \(result.stderr)")
                    #expect(result.stderr.contains("it runs as uid 65534 (nobody)"), "\(name) names the owner: \(result.stderr)")
                    #expect(!result.stdout.contains(ForeignAgent.token), "\(name): \(result.stdout)")
                    #expect(!result.stdout.contains(ForeignAgent.url), "\(name): \(result.stdout)")
                }
                #expect(fake.requests.isEmpty, "nothing was sent to the fake agent: \(fake.requests)")
                #expect(RunningAgents.pids(mentioning: world.sandbox.root).isEmpty, "no agent was started beside it")
                fake.stop()
            }
        }

        @Test(.enabled(if: getuid() == 0, "runs the fake agent as uid 65534 with setpriv, which needs root"))
        func aSocketDirectoryMadeByAnotherUserIsRefused() async throws {
            try await AgentWorld.run { world in
                // What another user can do to /tmp/rc-agent-UID when XDG_RUNTIME_DIR is unset.
                let fake = try await ForeignAgent(uid: 65534, mode: 0o755, logPath: world.sandbox.root + "/state/fake.log")
                defer { fake.stop() }
                let env = ["RC_AGENT_SOCK": fake.socket, "RC_AGENT_NO_AUTOSTART": "0"]
                for (name, arguments) in [("token", ["token"]), ("status", ["status"]), ("start", ["start"])] {
                    let result = try await world.session.run(arguments, env: env)
                    world.record(result)
                    #expect(result.status == 3, "\(name): \(result)")
                    #expect(
                        result.stderr.contains("its directory \(fake.directory) is owned by uid 65534 (nobody), not by you"),
                        "\(name): \(result.stderr)")
                }
                #expect(fake.requests.isEmpty, "nothing was sent to the fake agent: \(fake.requests)")
                #expect(RunningAgents.pids(mentioning: fake.socket).isEmpty, "no agent was started in its directory")
            }
        }

        @Test func anAgentDirectoryOthersCanReachIsRefused() async throws {
            try await AgentWorld.run { world in
                try await world.start()
                let directory = (world.socket as NSString).deletingLastPathComponent
                #expect(chmod(directory, 0o755) == 0)
                let before = await world.state.tokenRequestCount
                let refused = try await world.tokenCLI()
                #expect(refused.status == 3, "\(refused)")
                #expect(refused.stderr.contains("its directory \(directory) is mode 755"), "\(refused.stderr)")
                #expect(refused.stderr.contains("chmod 700 \(directory)"), "\(refused.stderr)")
                let stop = try await world.rcAgent(["stop"])
                #expect(stop.status == 3, "stop is refused too: \(stop)")
                #expect(await world.state.tokenRequestCount == before)

                #expect(chmod(directory, 0o700) == 0)
                let served = try await world.tokenCLI()
                #expect(served.status == 0, "the same agent once the directory is private again: \(served)")
            }
        }
    }
}
