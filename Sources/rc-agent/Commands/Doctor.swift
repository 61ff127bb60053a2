import ArgumentParser
import FoundationEssentials
import RCAgentClient
import RCAgentCore
import RCAgentDaemon
import RCAgentLive

/// `rc-agent doctor [--json]`: the troubleshooting guide's steps, done for you.
struct Doctor: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "doctor",
        abstract: "Check config, credentials (any backend), tenant, token, permissions, agent and rotation.",
        discussion: """
            One line per check: ✓ ok, ✗ failed (with the cause and the fix), ! warning, - skipped because \
            an earlier check failed. Exits 0 when nothing failed, otherwise with the exit code of the first \
            failure. --json prints {"checks":[{"id","status","message","hint","elapsed_ms"}],"ok":bool}.
            """)

    @OptionGroup var global: GlobalOptions

    @OptionGroup var socketOption: SocketOption

    @OptionGroup var prompt: PromptOption

    @Flag(help: "Print one JSON document.")
    var json = false

    func run() async throws {
        hardenProcess()
        let report = await LiveEnvironment.doctor(.init(
            configFlag: global.config, profileFlag: global.profile, socketFlag: socketOption.socket,
            environment: ProcessInfo.processInfo.environment),
            noPromptFlag: prompt.noPrompt, waiting: KeyringView.announceWaiting).run()
        Terminal.standardOutput.write(json ? DoctorView.json(report) : DoctorView.text(report))
        if report.exitStatus != .ok { throw ExitCode(report.exitStatus.rawValue) }
    }
}
