import ArgumentParser
import RCAgentClient
import RCAgentCore
import RCAgentLive

/// `--no-prompt`: for the commands that read or change a stored secret, which otherwise answer a
/// locked keyring with the desktop's unlock prompt when run from a terminal.
struct PromptOption: ParsableArguments {
    @Flag(
        name: .customLong("no-prompt"),
        help: """
            Never show the keyring's unlock prompt: a locked keyring fails with exit 5 (also \
            RC_AGENT_NO_PROMPT=1). Without a terminal on stderr there is never a prompt.
            """)
    var noPrompt = false

    /// The unlock prompt for `live`'s settings; it says on stderr that it is waiting.
    func unlockPrompt(_ live: LiveEnvironment) -> UnlockPrompt {
        live.unlockPrompt(noPromptFlag: noPrompt, waiting: KeyringView.announceWaiting)
    }

    /// The profile's credentials (those of `backend` when given), answering a locked keyring with the prompt.
    func credentialStore(_ live: LiveEnvironment, backend: CredentialBackend? = nil) -> any CredentialStore {
        live.credentialStore(backend: backend, prompt: unlockPrompt(live))
    }
}
