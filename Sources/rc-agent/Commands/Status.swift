import ArgumentParser
import Foundation
import RCAgentClient
import RCAgentCore
import RCAgentDaemon
import RCAgentLive

/// `rc-agent status [--json]`
struct Status: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Show profiles, stored credentials and keyring state.",
        discussion: """
            Starts the agent if none is running, unless --no-autostart or RC_AGENT_NO_AUTOSTART=1. Exits with \
            the code of the worst problem found: 3 agent could not be started (or its socket is another \
            user's: refused before anything is sent), 5 keyring locked or \
            unavailable, 2 not logged in.
            """)

    @OptionGroup var global: GlobalOptions
    @OptionGroup var agent: AgentOptions

    @Flag(help: "Print one stable JSON document.")
    var json = false

    func run() async throws {
        try await runReportingErrors {
            let settings = try global.settings()
            var report = await StatusReport.collect(
                settings: settings, onlyProfile: settings.profileExplicit ? settings.profile : nil,
                store: LiveEnvironment(settings).credentialStore(), now: Date())
            report.agent = try await AgentView.collect(
                socketPath: agent.socketPath, autostart: agent.autostart, settings: settings)
            Terminal.standardOutput.write(json ? StatusView.json(report) + "\n" : StatusView.text(report))
            return report.exitStatus
        }
    }
}
