/// Unlocking the keyring, which shows the desktop's unlock prompt. `LibSecretStore`
/// (RCAgentLive) is the real one.
///
/// The agent never holds one: only a command run by a person unlocks (see ``UnlockPrompt``).
public protocol KeyringUnlocking: Sendable {
    /// Asks the Secret Service to unlock the default collection and every locked rc-agent item of
    /// `profile` (of every profile when nil), and waits for the person's answer, bounded by the
    /// keyring timeout. Returns at once when nothing is locked.
    ///
    /// Throws ``KeyringError/unlockCancelled`` when the prompt was cancelled,
    /// ``KeyringError/promptUnavailable(reason:)`` when no prompt could be shown, and
    /// ``KeyringError/timedOut(seconds:)`` when nobody answered in time.
    func unlock(profile: String?) async throws
}

/// Whether a command may show the keyring's unlock prompt, and what it does while it waits.
///
/// A command run by a person (stderr is a terminal) may; `--no-prompt`, `RC_AGENT_NO_PROMPT=1` or
/// no terminal turn it off, and a locked keyring fails as `keyring_locked` (exit 5).
public struct UnlockPrompt: Sendable {
    /// When a locked keyring is met.
    public enum Mode: Sendable, Equatable {
        /// No prompt: `keyring_locked` as it is (scripts, cron, CI, `--no-prompt`).
        case off
        /// A person is there, but this session has no display (`DISPLAY`, `WAYLAND_DISPLAY`) to
        /// show a prompt on (SSH): fail at once, naming the headless choices.
        case noDisplay
        /// Show the prompt, then try once more.
        case prompt
    }

    public let mode: Mode
    let unlocker: any KeyringUnlocking
    let waiting: @Sendable () -> Void

    /// - Parameters:
    ///   - person: true when stderr is a terminal.
    ///   - noPromptFlag: `--no-prompt`.
    ///   - environment: the process environment (`RC_AGENT_NO_PROMPT`, `DISPLAY`, `WAYLAND_DISPLAY`).
    ///   - unlocker: the keyring.
    ///   - waiting: called once when the prompt is about to show (the command says so on stderr).
    public init(
        person: Bool, noPromptFlag: Bool, environment: [String: String], unlocker: any KeyringUnlocking,
        waiting: @escaping @Sendable () -> Void
    ) {
        self.unlocker = unlocker
        self.waiting = waiting
        if !person || noPromptFlag || environment["RC_AGENT_NO_PROMPT"] == "1" {
            mode = .off
        } else if (environment["DISPLAY"] ?? "").isEmpty && (environment["WAYLAND_DISPLAY"] ?? "").isEmpty {
            mode = .noDisplay
        } else {
            mode = .prompt
        }
    }

    /// Runs `body`; when it fails with `keyring_locked`, unlocks (showing the prompt), runs
    /// `afterUnlock` (e.g. tell the agent to read the keyring again at once) and runs `body` once more.
    public func retrying<T: Sendable>(
        profile: String?, afterUnlock: () async throws -> Void = {}, _ body: () async throws -> T
    ) async throws -> T {
        do {
            return try await body()
        } catch let error as any RCAgentError where error.code == .keyringLocked && mode != .off {
            try await unlock(profile: profile)
            try await afterUnlock()
            return try await body()
        }
    }

    /// Shows the prompt (or says why it cannot) and waits for the answer.
    public func unlock(profile: String?) async throws {
        switch mode {
        case .off: throw KeyringError.locked
        case .noDisplay:
            throw KeyringError.promptUnavailable(reason: "this session has no display (DISPLAY and WAYLAND_DISPLAY are unset)")
        case .prompt:
            waiting()
            try await unlocker.unlock(profile: profile)
        }
    }
}

/// A ``CredentialStore`` that answers a locked keyring with the unlock prompt (``UnlockPrompt``)
/// and tries once more. Listing never unlocks: it reads attributes only.
public struct PromptingCredentialStore: CredentialStore {
    let base: any CredentialStore
    let prompt: UnlockPrompt

    public init(_ base: any CredentialStore, prompt: UnlockPrompt) {
        self.base = base
        self.prompt = prompt
    }

    public func load(profile: String) async throws -> StoredCredential? {
        try await prompt.retrying(profile: profile) { try await base.load(profile: profile) }
    }

    public func save(_ credential: StoredCredential) async throws {
        try await prompt.retrying(profile: credential.profile) { try await base.save(credential) }
    }

    @discardableResult
    public func delete(profile: String) async throws -> Bool {
        try await prompt.retrying(profile: profile) { try await base.delete(profile: profile) }
    }

    public func list() async throws -> [CredentialSummary] {
        try await base.list()
    }

    @discardableResult
    public func reconcile(profile: String) async throws -> Bool {
        try await prompt.retrying(profile: profile) { try await base.reconcile(profile: profile) }
    }

    public func backend(for profile: String) -> CredentialBackend { base.backend(for: profile) }

    public func readOnly(profile: String) -> ReadOnlyCredentialsError? { base.readOnly(profile: profile) }

    public func states(profiles: [String]) async -> [String: CredentialState] { await base.states(profiles: profiles) }

    public func fingerprint(profile: String) async -> Int? { await base.fingerprint(profile: profile) }
}

/// An ``AgentTokenSource`` (the agent over its socket) that answers the agent's `keyring_locked`
/// with the unlock prompt: the client unlocks, has the agent forget its failure, and asks once
/// more. The agent itself never prompts.
public struct PromptingTokenSource: AgentTokenSource {
    let base: any AgentTokenSource
    let prompt: UnlockPrompt
    let forget: @Sendable (String) async throws -> Void

    /// - Parameter forget: tells the agent to drop the profile's failure state (`DELETE /v1/token`),
    ///   so its backoff after `keyring_locked` does not answer the second request.
    public init(
        _ base: any AgentTokenSource, prompt: UnlockPrompt, forget: @escaping @Sendable (String) async throws -> Void
    ) {
        self.base = base
        self.prompt = prompt
        self.forget = forget
    }

    public func token(profile: String, minValid: Int?) async throws -> TokenResponse {
        try await prompt.retrying(profile: profile, afterUnlock: { try await forget(profile) }) {
            try await base.token(profile: profile, minValid: minValid)
        }
    }

    public func refresh(profile: String) async throws -> TokenResponse {
        try await prompt.retrying(profile: profile, afterUnlock: { try await forget(profile) }) {
            try await base.refresh(profile: profile)
        }
    }
}
