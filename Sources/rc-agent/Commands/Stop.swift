import ArgumentParser
import FoundationEssentials
import RCAgentClient
import RCAgentCore
import RCAgentDaemon
import RCAgentLive

/// `rc-agent stop`: asks the agent to exit and waits until it has.
struct Stop: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "stop",
        abstract: "Stop the agent.",
        discussion: """
            Prints the line that removes RC_AGENT_SOCK, in the shell syntax `start` chooses (`unset \
            RC_AGENT_SOCK;`, `unsetenv RC_AGENT_SOCK;`, `set -e RC_AGENT_SOCK;`). Stopping an agent that is \
            not running is not an error.
            """)

    @OptionGroup var global: GlobalOptions

    @OptionGroup var socketOption: SocketOption

    @OptionGroup var shellOption: ShellSyntaxOption

    func run() async throws {
        try await runReportingErrors {
            let path = socketOption.socketPath
            if try await AgentLauncher.stop(socketPath: path) == false {
                Terminal.standardError.write("rc-agent: no agent is running on \(path)\n")
            }
            Terminal.standardOutput.write(shellOption.syntax.unset("RC_AGENT_SOCK"))
            return .ok
        }
    }
}
