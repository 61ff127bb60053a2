import ArgumentParser
import RCAgentLive

/// `rc-agent keyring-helper` (hidden): one keyring call for the agent, which keeps libsecret out
/// of its own process (``KeyringProcessStore``). The request comes on stdin, the answer goes to
/// stdout.
struct KeyringHelperCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: KeyringHelper.command,
        abstract: "Answer one keyring request from the agent on stdin (the agent runs this).",
        shouldDisplay: false)

    func run() async throws {
        let status = await KeyringHelper.serve()
        if status != 0 { throw ExitCode(status) }
    }
}
