import ArgumentParser
import Foundation
import RCAgentClient
import RCAgentCore
import RCAgentDaemon
import RCAgentLive

/// `rc-agent start`: a detached agent, and the line that points the shell at it.
struct Start: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Start the agent in the background unless one is running.",
        discussion: "Prints `RC_AGENT_SOCK=PATH; export RC_AGENT_SOCK;` for `eval \"$(rc-agent start)\"`.")

    @OptionGroup var global: GlobalOptions

    @OptionGroup var socketOption: SocketOption

    func run() async throws {
        try await runReportingErrors {
            let settings = try global.settings()
            let path = socketOption.socketPath
            try await AgentLauncher.start(socketPath: path, settings: settings)
            Terminal.standardOutput.write("RC_AGENT_SOCK=\(ShellQuote.quote(path)); export RC_AGENT_SOCK;\n")
            return .ok
        }
    }
}
