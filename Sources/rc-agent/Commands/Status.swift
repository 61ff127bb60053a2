import ArgumentParser
import FoundationEssentials
import RCAgentClient
import RCAgentCore
import RCAgentDaemon
import RCAgentLive

/// `rc-agent status [--json]`
struct Status: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "status",
        abstract: "Show profiles, where their credentials come from, and the state of each backend.",
        discussion: """
            Shows each profile's backend (secret-service, keyctl, env, file). Starts the agent if none is \
            running, unless --no-autostart or RC_AGENT_NO_AUTOSTART=1, or the credentials come from the \
            environment. Exits with the code of the worst problem found: 3 agent could not be started (or \
            its socket is another user's: refused before anything is sent), 5 keyring locked or \
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
            // Credentials from the environment are used in-process: no agent is started for them.
            let autostart = agent.autostart && settings.backend(for: settings.profile) != .env
            report.agent = try await AgentView.collect(socketPath: agent.socketPath, autostart: autostart, settings: settings)
            Terminal.standardOutput.write(json ? StatusView.json(report) + "\n" : StatusView.text(report))
            return report.exitStatus
        }
    }
}
