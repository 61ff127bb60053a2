import Foundation
import RCAgentCore
import RCAgentTestSupport
import Synchronization
import Testing

/// The policy around the keyring's unlock prompt, on an in-memory keyring that can be locked.
/// The real prompt (gnome-keyring's, under Xvfb) is tested in IntegrationTests/DesktopUnlockTests.
@Suite struct UnlockPromptTests {
    private let display = ["DISPLAY": ":5"]

    /// A locked in-memory keyring behind the prompt policy for `person` in `environment`.
    private func lockedStore(
        person: Bool = true, environment: [String: String]? = nil, unlocker: (LockableStore) -> Unlocker,
        waiting: @escaping @Sendable () -> Void = {}
    ) -> (store: LockableStore, prompting: PromptingCredentialStore, unlocker: Unlocker) {
        let store = LockableStore(locked: true)
        let unlocker = unlocker(store)
        let prompt = UnlockPrompt(
            person: person, noPromptFlag: false, environment: environment ?? display, unlocker: unlocker,
            waiting: waiting)
        return (store, PromptingCredentialStore(store, prompt: prompt), unlocker)
    }

    @Test func modeFollowsTerminalFlagEnvironmentAndDisplay() {
        func mode(person: Bool, flag: Bool = false, _ environment: [String: String]) -> UnlockPrompt.Mode {
            UnlockPrompt(person: person, noPromptFlag: flag, environment: environment, unlocker: Unlocker(store: nil)) {}
                .mode
        }
        #expect(mode(person: true, display) == .prompt)
        #expect(mode(person: true, ["WAYLAND_DISPLAY": "wayland-0"]) == .prompt)
        #expect(mode(person: false, display) == .off)
        #expect(mode(person: true, flag: true, display) == .off)
        #expect(mode(person: true, display.merging(["RC_AGENT_NO_PROMPT": "1"]) { $1 }) == .off)
        #expect(mode(person: true, [:]) == .noDisplay)
        #expect(mode(person: true, ["DISPLAY": ""]) == .noDisplay)
    }

    @Test func aLockedReadShowsThePromptOnceThenReads() async throws {
        let waits = Mutex(0)
        let (_, prompting, unlocker) = lockedStore(unlocker: { Unlocker(store: $0) }) { waits.withLock { $0 += 1 } }
        let loaded = try await prompting.load(profile: "default")
        #expect(loaded?.clientID == "client-1")
        #expect(unlocker.calls == ["default"])
        #expect(waits.withLock { $0 } == 1)
    }

    @Test func withoutAPersonALockedKeyringFailsAsBefore() async throws {
        let (_, prompting, unlocker) = lockedStore(person: false, unlocker: { Unlocker(store: $0) })
        await #expect(throws: KeyringError.locked) { try await prompting.load(profile: "default") }
        #expect(unlocker.calls.isEmpty)
    }

    @Test func aCancelledPromptChangesNothing() async throws {
        let (store, prompting, _) = lockedStore(unlocker: { Unlocker(store: $0, answer: .unlockCancelled) })
        let replacement = StoredCredential(
            profile: "default", clientID: "other", url: "https://acme.logicgate.com", secret: Secret("new"),
            created: Date(timeIntervalSince1970: 1))
        await #expect(throws: KeyringError.unlockCancelled) {
            try await prompting.save(replacement)
        }
        #expect(KeyringError.unlockCancelled.exitStatus == .keyringUnavailable)
        #expect(KeyringError.unlockCancelled.message.contains("the unlock was cancelled"))
        #expect(store.writes == 1, "the save is not tried again after a cancel")
        store.unlockForTest()
        #expect(try await store.load(profile: "default")?.clientID == "client-1")
    }

    @Test func noDisplayFailsAtOnceAndNamesTheHeadlessChoices() async throws {
        let (_, prompting, unlocker) = lockedStore(environment: [:], unlocker: { Unlocker(store: $0) })
        do {
            _ = try await prompting.load(profile: "default")
            Issue.record("a locked keyring without a display must fail")
        } catch let error as KeyringError {
            guard case .promptUnavailable = error else { throw error }
            #expect(error.exitStatus == .keyringUnavailable)
            let hint = try #require(error.hint)
            for choice in ["rc-agent login --backend keyctl", "RC_CLIENT_ID", "RC_CLIENT_SECRET", "client_secret_file"] {
                #expect(hint.contains(choice), "hint lacks \(choice): \(hint)")
            }
        }
        #expect(unlocker.calls.isEmpty)
    }

    @Test func stillLockedAfterTheUnlockFailsWithoutAskingAgain() async throws {
        let (_, prompting, unlocker) = lockedStore(unlocker: { _ in Unlocker(store: nil) })
        await #expect(throws: KeyringError.locked) { try await prompting.load(profile: "default") }
        #expect(unlocker.calls.count == 1)
    }

    @Test func theAgentsKeyringLockedIsAnsweredByTheClient() async throws {
        let store = LockableStore(locked: true)
        let unlocker = Unlocker(store: store)
        let agent = LockedAgent(store: store)
        let prompt = UnlockPrompt(person: true, noPromptFlag: false, environment: display, unlocker: unlocker) {}
        let tokens = PromptingTokenSource(agent, prompt: prompt, forget: { agent.forget($0) })
        let token = try await tokens.token(profile: "default", minValid: nil)
        #expect(token.accessToken.reveal() == "tok")
        #expect(unlocker.calls == ["default"])
        #expect(agent.forgotten == ["default"])
    }
}

/// An in-memory keyring that can be locked: reads and writes throw `.locked` while it is.
private final class LockableStore: CredentialStore {
    private let base = AgentMemoryStore.withDefault(url: "https://acme.logicgate.com")
    private let state: Mutex<(locked: Bool, writes: Int)>

    init(locked: Bool) { state = Mutex((locked, 0)) }

    var isLocked: Bool { state.withLock { $0.locked } }
    var writes: Int { state.withLock { $0.writes } }
    func unlockForTest() { state.withLock { $0.locked = false } }

    private func check() throws { if isLocked { throw KeyringError.locked } }

    func load(profile: String) async throws -> StoredCredential? {
        try check()
        return try await base.load(profile: profile)
    }

    func save(_ credential: StoredCredential) async throws {
        state.withLock { $0.writes += 1 }
        try check()
        try await base.save(credential)
    }

    func delete(profile: String) async throws -> Bool {
        try check()
        return try await base.delete(profile: profile)
    }

    func list() async throws -> [CredentialSummary] { try await base.list() }

    func reconcile(profile: String) async throws -> Bool {
        try check()
        return false
    }
}

/// Records each unlock; unlocks `store` (when given) unless it is to answer with an error.
private final class Unlocker: KeyringUnlocking {
    private let store: LockableStore?
    private let answer: KeyringError?
    private let log = Mutex<[String]>([])

    init(store: LockableStore?, answer: KeyringError? = nil) {
        self.store = store
        self.answer = answer
    }

    var calls: [String] { log.withLock { $0 } }

    func unlock(profile: String?) async throws {
        log.withLock { $0.append(profile ?? "*") }
        if let answer { throw answer }
        store?.unlockForTest()
    }
}

/// The agent's side: `keyring_locked` (as the socket relays it) while the store is locked.
private final class LockedAgent: AgentTokenSource {
    private let store: LockableStore
    private let forgot = Mutex<[String]>([])

    init(store: LockableStore) { self.store = store }

    var forgotten: [String] { forgot.withLock { $0 } }
    func forget(_ profile: String) { forgot.withLock { $0.append(profile) } }

    func token(profile: String, minValid: Int?) async throws -> TokenResponse {
        if store.isLocked {
            throw AgentError(received: ErrorInfo(code: "keyring_locked", message: "the keyring is locked", hint: nil, upstreamStatus: nil), httpStatus: 503)
        }
        return TokenResponse(
            accessToken: Secret("tok"), expiresAt: "2033-05-18T03:33:20Z", expiresIn: 3600, profile: profile,
            url: "https://acme.logicgate.com", rotation: nil)
    }

    func refresh(profile: String) async throws -> TokenResponse { try await token(profile: profile, minValid: nil) }
}
