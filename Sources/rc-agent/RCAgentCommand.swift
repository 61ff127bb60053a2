import ArgumentParser
import Glibc
import RCAgentClient
import RCAgentCore
import RCAgentDaemon
import RCAgentLive

/// The process's entry: a bare `rc-agent token` is answered by ``TokenShortcut`` when an agent
/// listens; everything else, and that too when no agent answers it, goes to ArgumentParser.
@main
enum RCAgentMain {
    static func main() async {
        if let status = TokenShortcut.run(arguments: CommandLine.arguments) { exit(status) }
        await RCAgentCommand.main()
    }
}

/// The `rc-agent` root command.
struct RCAgentCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "rc-agent",
        abstract: "A credential and token agent for the Risk Cloud API.",
        discussion: """
            Keeps your Risk Cloud Client ID and Secret in the keyring and serves bearer tokens to \
            scripts over a Unix socket, like ssh-agent.

            Without a desktop keyring, each profile names its backend: `login --backend keyctl` (the \
            kernel keyring; survives logout, not a reboot), RC_CLIENT_ID + RC_CLIENT_SECRET + RC_AGENT_URL \
            in the environment (CI: no agent, nothing written), or `client_secret_file` (a delivered file).

            Agent socket: --socket, $RC_AGENT_SOCK, $XDG_RUNTIME_DIR/rc-agent/agent.sock, \
            /run/user/UID/rc-agent/agent.sock (when yours and 0700), /tmp/rc-agent-UID/agent.sock.

            A locked keyring shows the desktop's unlock prompt when you run a command from a terminal \
            (--no-prompt or RC_AGENT_NO_PROMPT=1 turn that off); scripts without a terminal never cause one.

            Exit codes: 0 ok, 1 other error, 2 not logged in, 3 agent not reachable, \
            4 credentials rejected, 5 keyring unavailable or locked (or its unlock prompt cancelled), \
            6 tenant unreachable/timed out/5xx, 64 usage error.
            """,
        version: RCAgentVersion.current,
        // Each names itself (`commandName`): ArgumentParser derives a missing name from
        // `String(describing:)` of the type, runtime type lookups for every command at every start.
        subcommands: [
            Login.self, Logout.self, Status.self, Rotate.self,
            Daemon.self, Start.self, Stop.self, Token.self, Exec.self, Doctor.self, Api.self, Profile.self,
            KeyringHelperCommand.self,
        ]
    )
}
