import ArgumentParser
import Foundation
import RCAgentCore

/// `rc-agent stop`: asks the agent to exit and waits until it has.
struct Stop: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Stop the agent.",
        discussion: "Prints `unset RC_AGENT_SOCK;` for eval. Stopping an agent that is not running is not an error.")

    @OptionGroup var global: GlobalOptions

    @Option(name: .long, help: "Agent socket (default: $RC_AGENT_SOCK, then $XDG_RUNTIME_DIR/rc-agent/agent.sock).")
    var socket: String?

    func run() async throws {
        try await runReportingErrors {
            let path = AgentSocket.path(flag: socket, environment: ProcessInfo.processInfo.environment)
            if try await AgentLauncher.stop(socketPath: path) == false {
                Terminal.standardError.write("rc-agent: no agent is running on \(path)\n")
            }
            Terminal.standardOutput.write("unset RC_AGENT_SOCK;\n")
            return .ok
        }
    }
}
