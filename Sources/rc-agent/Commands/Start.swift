import ArgumentParser
import FoundationEssentials
import RCAgentClient
import RCAgentCore
import RCAgentDaemon
import RCAgentLive

/// `rc-agent start`: a detached agent, and the line that points the shell at it.
struct Start: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "start",
        abstract: "Start the agent in the background unless one is running.",
        discussion: """
            Prints the line that sets RC_AGENT_SOCK, like ssh-agent, in the syntax of the shell named by \
            $SHELL (a name ending in csh: csh; fish: fish; otherwise sh) or of the flag given: \
            `eval "$(rc-agent start)"` (sh, bash, zsh), eval `rc-agent start -c` (csh, tcsh), \
            `rc-agent start --fish | source` (fish).
            """)

    @OptionGroup var global: GlobalOptions

    @OptionGroup var socketOption: SocketOption

    @OptionGroup var shellOption: ShellSyntaxOption

    func run() async throws {
        try await runReportingErrors {
            let settings = try global.settings()
            let path = socketOption.socketPath
            try await AgentLauncher.start(socketPath: path, settings: settings)
            Terminal.standardOutput.write(shellOption.syntax.export("RC_AGENT_SOCK", path))
            return .ok
        }
    }
}
