import ArgumentParser
import Foundation
import RCAgentCore

/// `rc-agent start`: a detached agent, and the line that points the shell at it.
struct Start: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Start the agent in the background unless one is running.",
        discussion: "Prints `RC_AGENT_SOCK=PATH; export RC_AGENT_SOCK;` for `eval \"$(rc-agent start)\"`.")

    @OptionGroup var global: GlobalOptions

    @Option(name: .long, help: "Agent socket (default: $RC_AGENT_SOCK, then $XDG_RUNTIME_DIR/rc-agent/agent.sock).")
    var socket: String?

    func run() async throws {
        try await runReportingErrors {
            let settings = try global.settings()
            let path = AgentSocket.path(flag: socket, environment: settings.environment)
            try await AgentLauncher.start(socketPath: path, settings: settings)
            Terminal.standardOutput.write("RC_AGENT_SOCK=\(ShellQuote.quote(path)); export RC_AGENT_SOCK;\n")
            return .ok
        }
    }
}
