import ArgumentParser
import FoundationEssentials
import RCAgentClient
import RCAgentCore
import RCAgentDaemon
import RCAgentLive

/// Options of the commands that talk to the agent: which socket, and whether to start an agent.
struct AgentOptions: ParsableArguments {
    @OptionGroup var socketOption: SocketOption

    @Flag(name: .customLong("no-autostart"), help: "Do not start an agent when none answers (also RC_AGENT_NO_AUTOSTART=1).")
    var noAutostart = false

    /// The socket path after `--socket` > `RC_AGENT_SOCK` > runtime dir > /tmp.
    var socketPath: String { socketOption.socketPath }

    /// False when `--no-autostart` or `RC_AGENT_NO_AUTOSTART=1`.
    var autostart: Bool {
        AgentLauncher.autostartEnabled(noAutostartFlag: noAutostart, environment: ProcessInfo.processInfo.environment)
    }

    /// Runs `body` with the command's token source: the agent (started first unless autostart is
    /// off), or an in-process fetch when the credentials come from the environment.
    /// A locked keyring behind the agent is answered with `prompt`'s unlock prompt.
    func withTokens<T: Sendable>(
        _ settings: Settings, prompt: PromptOption, _ body: (any AgentTokenSource) async throws -> T
    ) async throws -> T {
        let live = LiveEnvironment(settings)
        return try await live.withTokenSource(
            socketPath: socketPath, autostart: autostart, prompt: prompt.unlockPrompt(live), body)
    }
}

/// `--socket` alone: for commands that tell a running agent about a change but never start one.
struct SocketOption: ParsableArguments {
    @Option(name: .long, help: """
        Agent socket (default: $RC_AGENT_SOCK, then $XDG_RUNTIME_DIR/rc-agent/agent.sock, then \
        /run/user/UID/rc-agent/agent.sock when that directory is yours and 0700, then /tmp/rc-agent-UID/agent.sock).
        """)
    var socket: String?

    /// The socket path after `--socket` > `RC_AGENT_SOCK` > runtime dir > /run/user/UID > /tmp.
    var socketPath: String {
        AgentSocket.path(flag: socket, environment: ProcessInfo.processInfo.environment)
    }
}

extension CredentialBackend: ExpressibleByArgument {}
