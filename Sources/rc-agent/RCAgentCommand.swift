import ArgumentParser
import RCAgentClient
import RCAgentCore
import RCAgentDaemon
import RCAgentLive

/// The `rc-agent` root command.
@main
struct RCAgentCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "rc-agent",
        abstract: "A credential and token agent for the Risk Cloud API.",
        discussion: """
            Keeps your Risk Cloud Client ID and Secret in the keyring and serves bearer tokens to \
            scripts over a Unix socket, like ssh-agent.

            Exit codes: 0 ok, 1 other error, 2 not logged in, 3 agent not reachable, \
            4 credentials rejected, 5 keyring unavailable or locked, \
            6 tenant unreachable/timed out/5xx, 64 usage error.
            """,
        version: RCAgentVersion.current,
        subcommands: [
            Login.self, Logout.self, Status.self, Rotate.self,
            Daemon.self, Start.self, Stop.self, Token.self, Exec.self, Doctor.self, Api.self, Profile.self,
        ]
    )
}
