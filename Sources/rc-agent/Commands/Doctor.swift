import ArgumentParser
import Foundation
import RCAgentCore

/// `rc-agent doctor [--json]`: the troubleshooting guide's steps, done for you.
struct Doctor: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Check config, keyring, tenant, credentials, token, permissions, agent and rotation.",
        discussion: """
            One line per check: ✓ ok, ✗ failed (with the cause and the fix), ! warning, - skipped because \
            an earlier check failed. Exits 0 when nothing failed, otherwise with the exit code of the first \
            failure. --json prints {"checks":[{"id","status","message","hint","elapsed_ms"}],"ok":bool}.
            """)

    @OptionGroup var global: GlobalOptions

    @Option(name: .long, help: "Agent socket to check (default: $RC_AGENT_SOCK, then $XDG_RUNTIME_DIR/rc-agent/agent.sock).")
    var socket: String?

    @Flag(help: "Print one JSON document.")
    var json = false

    func run() async throws {
        let report = await DoctorRunner.live(.init(
            configFlag: global.config, profileFlag: global.profile, socketFlag: socket,
            environment: ProcessInfo.processInfo.environment)).run()
        Terminal.standardOutput.write(json ? report.json() : report.render())
        if report.exitStatus != .ok { throw ExitCode(report.exitStatus.rawValue) }
    }
}
