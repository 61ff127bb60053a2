import Foundation
import RCAgentTestSupport
import Testing

extension HardeningTests {
    /// The agent's memory under requests that each read the config and the keyring.
    @Suite struct MemoryTests {
        /// `count` requests for `target` on one keep-alive connection (curl's URL globbing);
        /// returns how many were answered `200`.
        static func ask(_ world: AgentWorld, _ target: String, count: Int) async throws -> Int {
            let result = try await runProcess(
                "/usr/bin/curl",
                ["-s", "--unix-socket", world.socket, "-o", "/dev/null", "-w", "%{http_code}\n",
                 "http://localhost\(target)?n=[1-\(count)]"],
                environment: world.sandbox.environment)
            world.record(result)
            return result.stdout.split(separator: "\n").filter { $0 == "200" }.count
        }

        /// The agent reads the keyring through `rc-agent keyring-helper` children: libsecret, GLib
        /// and GIO (about 4 MB resident once mapped) never enter its own process, whether it read
        /// a secret for a token, listed the keyring for a status or sent a rotation reminder.
        @Test func theAgentNeverMapsLibsecret() async throws {
            try await AgentWorld.run { world in
                let daemon = try await world.daemon()
                #expect(try await world.token().status == 200)
                #expect(try await Self.ask(world, "/v1/status", count: 3) == 3)
                #expect(await world.state.tokenRequestCount >= 1, "the token did not come from the tenant (no keyring read)")
                let maps = try String(contentsOfFile: "/proc/\(daemon.pid)/maps", encoding: .utf8)
                #expect(maps.contains("rc-agent"), "not the agent's map:\n\(maps.prefix(300))")
                for library in ["libsecret-1", "libglib-2.0", "libgio-2.0", "libgobject-2.0"] {
                    #expect(!maps.contains(library), "the agent mapped \(library)")
                }
            }
        }

        /// Every `GET /v1/status` lists the keyring (now in a helper process) and reads the config.
        /// Each one used to leave about 7.5 KB behind for good (GDBus callbacks on a main context
        /// nothing ran, and TOMLKit's tables): +7.3 MiB of RSS over these 1,000 requests, and the
        /// RSS growth under bad input (docs/RELIABILITY.md). Now the growth is a fraction of a MiB.
        @Test func statusRequestsKeepTheAgentsMemoryFlat() async throws {
            try await AgentWorld.run { world in
                let daemon = try await world.daemon()
                // Warm up: the token, the keyring connection and the code paths exist before the baseline.
                #expect(try await world.token().status == 200)
                #expect(try await Self.ask(world, "/v1/status", count: 300) == 300)
                let before = try InteropTests.memory(of: daemon.pid)

                #expect(try await Self.ask(world, "/v1/status", count: 1000) == 1000)
                let after = try InteropTests.memory(of: daemon.pid)

                print("rc-agent memory over 1000 status requests (KiB): VmRSS \(before.rss) → \(after.rss)")
                #expect(after.rss - before.rss < 3 * 1024, "RSS grew by \(after.rss - before.rss) KiB")
            }
        }
    }
}
