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
            Starts the agent if none is running, unless --no-autostart or RC_AGENT_NO_AUTOSTART=1. With \
            RC_CLIENT_ID and RC_CLIENT_SECRET (and RC_AGENT_URL) set, the token is fetched by this process \
            instead: no agent, no keyring, nothing written. When the keyring is locked and stderr is a \
            terminal, the desktop's unlock prompt shows (see --no-prompt).
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
            let token = try await agent.withTokens(settings, prompt: prompt) {
                try await $0.token(profile: settings.profile, minValid: minValid)
            }
            ReminderView.emit(for: token, settings: settings)
            Terminal.standardOutput.write(json ? try token.jsonText() : token.accessToken.reveal() + "\n")
            return .ok
        }
    }
}
