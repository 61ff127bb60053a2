import ArgumentParser
import Foundation
import RCAgentClient
import RCAgentCore
import RCAgentDaemon
import RCAgentLive

/// `rc-agent token`: the profile's bearer token from the agent, for scripts.
struct Token: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Print a bearer token for the profile (only the token and a newline on stdout).",
        discussion: """
            Starts the agent if none is running, unless --no-autostart or RC_AGENT_NO_AUTOSTART=1. When \
            the keyring is locked and stderr is a terminal, the desktop's unlock prompt shows (see --no-prompt).
            """)

    @OptionGroup var global: GlobalOptions
    @OptionGroup var agent: AgentOptions
    @OptionGroup var prompt: PromptOption

    @Option(name: .customLong("min-valid"), help: "Seconds the token must still be valid for (default 60).")
    var minValid: Int?

    @Flag(help: "Print the agent's JSON answer (token, expires_at, expires_in, profile, url).")
    var json = false

    func run() async throws {
        try await runReportingErrors {
            let settings = try global.settings()
            let tokens = prompt.agentTokens(try await agent.client(settings), LiveEnvironment(settings))
            let token = try await tokens.token(profile: settings.profile, minValid: minValid)
            ReminderView.emit(for: token, settings: settings)
            Terminal.standardOutput.write(json ? try token.jsonText() : token.accessToken.reveal() + "\n")
            return .ok
        }
    }
}
