import RCAgentLive

/// What a command says about the keyring's unlock prompt.
enum KeyringView {
    static let waiting = "Waiting for the keyring to be unlocked (a prompt is showing)…\n"

    /// Writes ``waiting`` on stderr, where the person who runs the command looks.
    @Sendable static func announceWaiting() {
        Terminal.standardError.write(waiting)
    }
}
