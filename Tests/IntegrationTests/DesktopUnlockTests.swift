import Foundation
import RCAgentTestSupport
import Testing

/// On the desktop a locked keyring shows gnome-keyring's real unlock prompt (gcr-prompter), in a
/// real X session (Xvfb), driven as a person would with xdotool.
///
/// Each part locks a keyring, which must not happen to the keyring the other suites share: so
/// these tests run this test binary again under scripts/with-keyring.sh, once with Xvfb
/// (`DesktopX11Tests`, and the reminder shown by dunst in RotationRemindersTests) and once with a
/// bus and a keyring but no display (`DesktopHeadlessTests`).
@Suite struct DesktopUnlockTests {
    @Test(.enabled(if: hasPrivateKeyring && Desktop.session == nil, "needs scripts/with-keyring.sh (make test)"))
    func inARealXSession() {
        let child = IsolatedRun.run(
            filter: "DesktopX11Tests|RotationRemindersTests/dunst",
            environment: ["RC_WITH_XVFB": "1", "RC_TEST_DESKTOP": "x11"])
        #expect(child.status == 0, "the X session's tests failed:\n\(child.output)")
        #expect(child.output.contains("Test run with 7 tests"), "not every desktop test ran:\n\(child.output)")
    }

    @Test(.enabled(if: hasPrivateKeyring && Desktop.session == nil, "needs scripts/with-keyring.sh (make test)"))
    func onABusWithoutADisplay() {
        let child = IsolatedRun.run(filter: "DesktopHeadlessTests", environment: ["RC_TEST_DESKTOP": "headless"])
        #expect(child.status == 0, "the headless tests failed:\n\(child.output)")
        #expect(child.output.contains("Test run with 1 test"), "the headless test did not run:\n\(child.output)")
    }
}

/// The line a command prints on stderr while the prompt shows.
private let waitingLine = "Waiting for the keyring to be unlocked (a prompt is showing)…"

/// Inside the X session (see ``DesktopUnlockTests``). Serialized: one keyring, one screen.
@Suite(.serialized, .enabled(if: Desktop.session == "x11", "runs inside DesktopUnlockTests' X session"))
struct DesktopX11Tests {
    private var password: String { ProcessInfo.processInfo.environment["RC_TEST_KEYRING_PASSWORD"] ?? "" }

    /// With the agent running and the keyring locked, opens a terminal running `rc-agent token`
    /// for the world's profile, waits for the unlock prompt and runs `body` with both.
    private func tokenInTerminal(
        _ world: AgentWorld, _ body: (TerminalWindow, _ prompt: String) async throws -> Void
    ) async throws {
        try await world.start()
        try await KeyringControl.whileLocked {
            let terminal = try TerminalWindow(
                rcAgent: ["token", "--profile", world.profile], environment: world.sandbox.environment)
            defer { terminal.remove() }
            try await body(terminal, try await Desktop.waitForWindow(named: Desktop.unlockPromptTitle) { terminal.diagnosis })
        }
    }

    @Test func thePromptUnlocksAndTheTokenIsPrinted() async throws {
        try await AgentWorld.run { world in try await tokenInTerminal(world) { terminal, prompt in
            // Where a window manager would put it: over the terminal, not on its first lines.
            try await Desktop.xdotool(["windowmove", "--sync", prompt, "250", "230"])
            try await Desktop.screenshot("unlock-prompt-over-terminal")
            try await Desktop.type(password, then: "Return", into: prompt)

            let status = try await terminal.waitForExit()
            let transcript = terminal.transcript
            let minted = await world.state.mintedTokens
            for token in minted { world.sandbox.leaks.watch(token) }
            #expect(status == 0, "exit \(status); the terminal showed:\n\(transcript)")
            #expect(transcript.contains(waitingLine))
            #expect(minted.contains { transcript.contains($0) }, "no token in:\n\(transcript)")
            #expect(try await Desktop.windows(named: Desktop.unlockPromptTitle).isEmpty)
        } }
    }

    /// A first login finds no item (nothing to unlock yet) and meets the lock when it stores:
    /// the prompt unlocks the default collection and the credentials land.
    @Test func aFirstLoginUnlocksTheKeyringToStoreTheCredentials() async throws {
        try await AgentWorld.run { world in
            let profile = "it-" + String(UUID().uuidString.prefix(8)).lowercased()
            let clientID = "client-" + String(UUID().uuidString.prefix(6))
            let secret = "s3cr3t-" + UUID().uuidString
            world.sandbox.leaks.watch(secret)
            await world.state.addClient(id: clientID, secret: secret)
            defer { Task { _ = try? await world.rcAgent(["logout", "--profile", profile]) } }
            try await KeyringControl.whileLocked {
                let terminal = try TerminalWindow(
                    rcAgent: ["login", "--profile", profile, "--url", world.url, "--client-id", clientID,
                              "--client-secret-stdin"],
                    stdin: secret + "\n", environment: world.sandbox.environment)
                defer { terminal.remove() }
                let prompt = try await Desktop.waitForWindow(named: Desktop.unlockPromptTitle) { terminal.diagnosis }
                try await Desktop.type(password, then: "Return", into: prompt)
                let status = try await terminal.waitForExit()
                #expect(status == 0, "exit \(status); \(terminal.diagnosis)")
                #expect(terminal.transcript.contains(waitingLine), "\(terminal.diagnosis)")
            }
            let stored = try await TestKeyring.secret(profile: profile, environment: world.sandbox.environment)
            #expect(stored == secret, "the login did not store the secret")
        }
    }

    @Test func cancellingThePromptEndsWithExit5AndChangesNothing() async throws {
        try await AgentWorld.run { world in try await tokenInTerminal(world) { terminal, prompt in
            try await Desktop.type(nil, then: "Escape", into: prompt)
            let status = try await terminal.waitForExit()
            let transcript = terminal.transcript
            #expect(status == 5, "exit \(status); the terminal showed:\n\(transcript)")
            #expect(transcript.contains("the unlock was cancelled"), "\(transcript)")

            // Still locked, the item still there (status reads attributes only), its secret unchanged.
            let report = try await world.rcAgent(["status", "--json", "--profile", world.profile])
            let json = try JSONSerialization.jsonObject(with: Data(report.stdout.utf8)) as? [String: Any]
            let mine = (json?["profiles"] as? [[String: Any]])?.first { $0["profile"] as? String == world.profile }
            #expect(mine?["keyring"] as? String == "locked", "\(report)")
            #expect(mine?["secret_stored"] as? Bool == true, "\(report)")
            try KeyringControl.unlockDefaultCollection()
            let stored = try await TestKeyring.secret(profile: world.profile, environment: world.sandbox.environment)
            #expect(stored == world.session.secret, "the stored secret changed")
        } }
    }

    @Test func withoutATerminalNoPromptEverShows() async throws {
        try await AgentWorld.run { world in
            try await world.start()
            // token reads (through the agent); a first login writes, where libsecret would unlock by itself.
            let (result, login, promptShown) = try await KeyringControl.whileLocked {
                (try await world.tokenCLI(),
                 try await world.rcAgent(
                    ["login", "--profile", "it-new-" + String(UUID().uuidString.prefix(6)), "--url", world.url,
                     "--client-id", world.session.clientID, "--client-secret-stdin"],
                    stdin: world.session.secret + "\n"),
                 try await Desktop.windows(named: Desktop.unlockPromptTitle))
            }
            #expect(login.status == 5, "\(login)")
            #expect(login.stderr.contains("the keyring is locked"), "\(login)")
            #expect(result.status == 5, "\(result)")
            #expect(result.stderr.contains("the keyring is locked"), "\(result)")
            #expect(!result.stderr.contains(waitingLine))
            #expect(promptShown.isEmpty, "an unlock prompt showed for a command without a terminal")
        }
    }

    @Test func noPromptFlagAndVariableTurnThePromptOff() async throws {
        try await AgentWorld.run { world in
            try await world.start()
            let (flag, variable, promptShown) = try await KeyringControl.whileLocked {
                (try await world.sandbox.rcAgentInPseudoTerminal(["token", "--no-prompt", "--profile", world.profile]),
                 try await world.sandbox.rcAgentInPseudoTerminal(
                    ["token", "--profile", world.profile], env: ["RC_AGENT_NO_PROMPT": "1"]),
                 try await Desktop.windows(named: Desktop.unlockPromptTitle))
            }
            for result in [flag, variable] {
                world.record(result)
                #expect(result.status == 5, "\(result)")
                #expect(result.stdout.contains("the keyring is locked"), "\(result)")
                #expect(!result.stdout.contains(waitingLine), "\(result)")
            }
            #expect(promptShown.isEmpty, "an unlock prompt showed despite --no-prompt / RC_AGENT_NO_PROMPT=1")
        }
    }

    @Test func aTerminalWithoutADisplayNamesTheHeadlessChoices() async throws {
        try await AgentWorld.run { world in
            try await world.start()
            // An SSH session: a terminal, the same bus, no DISPLAY.
            let (result, promptShown) = try await KeyringControl.whileLocked {
                (try await world.sandbox.rcAgentInPseudoTerminal(["token", "--profile", world.profile], unset: ["DISPLAY"]),
                 try await Desktop.windows(named: Desktop.unlockPromptTitle))
            }
            world.record(result)
            #expect(result.status == 5, "\(result)")
            #expect(result.stdout.contains("its unlock prompt cannot be shown"), "\(result)")
            for choice in ["rc-agent login --backend keyctl", "RC_CLIENT_ID", "RC_CLIENT_SECRET", "client_secret_file"] {
                #expect(result.stdout.contains(choice), "no '\(choice)' in: \(result)")
            }
            #expect(promptShown.isEmpty)
        }
    }
}

/// Inside a session with a bus and a keyring but no display (see ``DesktopUnlockTests``).
@Suite(.enabled(if: Desktop.session == "headless", "runs inside DesktopUnlockTests' headless session"))
struct DesktopHeadlessTests {
    /// The command believes there is a display, but the keyring's prompter cannot open one: the
    /// prompt fails at once and the command says so.
    @Test func aPrompterThatCannotStartIsReportedNotTakenForACancel() async throws {
        try await AgentWorld.run { world in
            try await world.start()
            let result = try await KeyringControl.whileLocked {
                try await world.sandbox.rcAgentInPseudoTerminal(["token", "--profile", world.profile], env: ["DISPLAY": ":99"])
            }
            world.record(result)
            #expect(result.status == 5, "\(result)")
            #expect(result.stdout.contains(waitingLine), "\(result)")
            #expect(result.stdout.contains("no prompter"), "\(result)")
            #expect(!result.stdout.contains("cancelled"), "\(result)")
            #expect(result.stdout.contains("rc-agent login --backend keyctl"), "\(result)")
        }
    }
}
