import Foundation
import RCAgentTestSupport
import Testing

// Nested in AgentCLITests, whose `.serialized` then runs these one at a time with its own tests:
// each of them starts agents and many processes, which the whole suite's other parallel tests
// (doctor's 5 s agent check among them) must not be starved by.
extension AgentCLITests {
    /// `--help` and `-h` as a user types them: every command, at every level, answers with its help
    /// and exit 0 without reading a config, a keyring or a socket.
    @Suite(.enabled(if: hasPrivateKeyring, "needs scripts/with-keyring.sh (make test)"))
    struct HelpCLITests {
        /// The subcommand names a help text lists under `SUBCOMMANDS:` (first word of each entry, without
        /// the aliases after a comma).
        static func subcommands(inHelp help: String) -> [String] {
            guard let section = help.components(separatedBy: "SUBCOMMANDS:\n").dropFirst().first else { return [] }
            return section.split(separator: "\n", omittingEmptySubsequences: false)
                .prefix { !$0.isEmpty }
                .filter { $0.hasPrefix("  ") && !$0.hasPrefix("   ") }
                .compactMap { $0.split(separator: " ").first.map { String($0.split(separator: ",")[0]) } }
        }

        @Test func everyCommandAnswersHelpAndDashH() async throws {
            let sandbox = try Sandbox()
            defer { sandbox.remove() }
            let root = try await sandbox.rcAgent(["--help"])
            #expect(root.status == 0, "\(root)")
            var pending = Self.subcommands(inHelp: root.stdout).map { [$0] }
            #expect(pending.contains(["exec"]) && pending.count >= 10, "\(pending)")
            var checked = 0
            while let path = pending.popLast() {
                for flag in ["--help", "-h"] {
                    let result = try await sandbox.rcAgent(path + [flag])
                    #expect(result.status == 0, "\(path) \(flag): \(result)")
                    #expect(result.stdout.contains("USAGE: rc-agent \(path.joined(separator: " "))"), "\(path) \(flag): \(result)")
                    if flag == "--help", path.count < 3 {
                        pending += Self.subcommands(inHelp: result.stdout).map { path + [$0] }
                    }
                }
                checked += 1
            }
            #expect(checked >= 14, "with profile list and profile use")
        }

        @Test func execHelpBeforeTheSeparatorIsHelpAndAfterItIsTheCommand() async throws {
            let sandbox = try Sandbox()
            defer { sandbox.remove() }
            for arguments in [["exec", "--help"], ["exec", "-h"], ["exec", "--profile", "nobody", "--help"]] {
                let result = try await sandbox.rcAgent(arguments)
                #expect(result.status == 0, "\(arguments): \(result)")
                #expect(result.stdout.contains("USAGE: rc-agent exec"), "\(arguments): \(result)")
            }
            // After `--`, `--help` belongs to the command: rc-agent needs a token first (no agent here).
            let passed = try await sandbox.rcAgent(["exec", "--", "sh", "--help"])
            #expect(passed.status == 3, "\(passed)")
            #expect(!passed.stdout.contains("USAGE"), "\(passed)")
        }

        @Test func execWithoutACommandIsAUsageError() async throws {
            let sandbox = try Sandbox()
            defer { sandbox.remove() }
            for arguments in [["exec"], ["exec", "--"], ["exec", "--profile", "x", "--"]] {
                let result = try await sandbox.rcAgent(arguments)
                #expect(result.status == 64, "\(arguments): \(result)")
                #expect(result.stderr.contains("give the command to run"), "\(arguments): \(result)")
            }
        }
    }
}
