import Foundation
import RiskCloudStandIn
import RCAgentTestSupport
import Testing

/// `rc-agent rotate` as a user runs it, with a running agent: the built binary, the private
/// gnome-keyring and the stand-in tenant.
@Suite(.enabled(if: hasPrivateKeyring, "needs scripts/with-keyring.sh (make test)"))
struct RotateCLITests {
    let sandbox: Sandbox
    let profile = "rot-" + String(UUID().uuidString.prefix(8)).lowercased()
    let clientID = "client-" + String(UUID().uuidString.prefix(6))
    let oldSecret = "old-" + UUID().uuidString
    let newSecret = "new-" + UUID().uuidString

    init() throws {
        sandbox = try Sandbox()
        sandbox.leaks.watch(oldSecret)
        sandbox.leaks.watch(newSecret)
    }

    /// Logs in with the old secret and starts an agent; runs `body`; stops the agent and logs out.
    func withLoggedInAgent(_ state: StandInState, _ body: (String) async throws -> Void) async throws {
        await state.addClient(id: clientID, secret: oldSecret)
        try await withStandIn(state) { url in
            let login = try await sandbox.rcAgent(
                ["login", "--profile", profile, "--url", url, "--client-id", clientID, "--client-secret-stdin"],
                stdin: oldSecret)
            #expect(login.status == 0, "\(login)")
            let start = try await sandbox.rcAgent(["start"])
            #expect(start.status == 0, "\(start)")
            do {
                try await body(url)
            } catch {
                _ = try? await sandbox.rcAgent(["stop"])
                throw error
            }
            _ = try await sandbox.rcAgent(["stop"])
        }
        _ = try await sandbox.rcAgent(["logout", "--profile", profile])
    }

    func token() async throws -> CLIResult {
        let result = try await sandbox.rcAgent(["token", "--profile", profile])
        sandbox.leaks.watch(result.stdout.trimmingCharacters(in: .whitespacesAndNewlines))
        return result
    }

    @Test func wrongNewSecretChangesNothingAndTheOldOneKeepsWorking() async throws {
        let state = StandInState()
        try await withLoggedInAgent(state) { _ in
            let before = try await TestKeyring.attributes(profile: profile, environment: sandbox.environment)
            let rotate = try await sandbox.rcAgent(
                ["rotate", "--profile", profile, "--client-secret-stdin"], stdin: newSecret)
            #expect(rotate.status == 4, "\(rotate)")
            #expect(rotate.stderr.contains("Reset Secret Key"))
            #expect(rotate.stderr.contains("Generate Access Key"), "the guide warns against the wrong button")
            #expect(try await TestKeyring.attributes(profile: profile, environment: sandbox.environment) == before)
            #expect(try await TestKeyring.secret(profile: profile, environment: sandbox.environment) == oldSecret)
            let token = try await token()
            #expect(token.status == 0, "\(token)")
            #expect(!token.stdout.isEmpty)
            try sandbox.assertNoLeaks([rotate])
        }
    }

    @Test func rightNewSecretIsStoredAndTheAgentServesATokenFromIt() async throws {
        let state = StandInState()
        try await withLoggedInAgent(state) { _ in
            let first = try await token()
            #expect(first.status == 0, "\(first)")
            let created = try await TestKeyring.attributes(profile: profile, environment: sandbox.environment)["created"]
            try await Task.sleep(nanoseconds: 1_100_000_000)  // `created` has one-second resolution

            // The user presses Reset Secret Key: the old secret and its tokens stop working.
            await state.resetSecret(clientID: clientID, newSecret: newSecret)
            let rotate = try await sandbox.rcAgent(
                ["rotate", "--profile", profile, "--client-secret-stdin"], stdin: newSecret + "\n")
            #expect(rotate.status == 0, "\(rotate)")
            #expect(rotate.stderr.contains("Rotated"))
            #expect(rotate.stderr.contains("running agent dropped its old token"))
            #expect(rotate.stderr.contains("Next rotation due"))

            #expect(try await TestKeyring.secret(profile: profile, environment: sandbox.environment) == newSecret)
            let after = try await TestKeyring.attributes(profile: profile, environment: sandbox.environment)
            #expect(after["created"] != created)

            let second = try await token()
            #expect(second.status == 0, "\(second)")
            #expect(second.stdout != first.stdout, "the agent must not keep serving the revoked token")
            let headers = await state.lastAuthorizationHeaders()
            #expect(headers.last == "Basic " + Data("\(clientID):\(newSecret)".utf8).base64EncodedString())

            let status = try await sandbox.rcAgent(["status", "--json", "--profile", profile])
            let json = try #require(JSONSerialization.jsonObject(with: Data(status.stdout.utf8)) as? [String: Any])
            let entry = try #require((json["profiles"] as? [[String: Any]])?.first)
            let rotation = try #require(entry["rotation"] as? [String: Any])
            #expect(rotation["age_days"] as? Int == 0)
            #expect(rotation["state"] as? String == "ok")
            #expect(rotation["rotate_after_days"] as? Int == 90)
            try sandbox.assertNoLeaks([rotate, status])
        }
    }

    @Test func theSameSecretAgainIsRefused() async throws {
        let state = StandInState()
        try await withLoggedInAgent(state) { _ in
            let rotate = try await sandbox.rcAgent(
                ["rotate", "--profile", profile, "--client-secret-stdin"], stdin: oldSecret)
            #expect(rotate.status == 64, "\(rotate)")
            #expect(rotate.stderr.contains("already stored"))
            #expect(await state.tokenRequestCount == 1, "only login's verification reached the tenant")
        }
    }

    /// A rotation killed after the new item was stored and before the old one was removed leaves
    /// two items. Build that state exactly (secret-tool stores the newer item beside the old one)
    /// and check that the newest secret is used, status says what happened, `rotate --resume`
    /// cleans up — and so does the next agent start.
    @Test func interruptedRotationKeepsAWorkingCredentialAndIsFinishedLater() async throws {
        let state = StandInState()
        try await withLoggedInAgent(state) { url in
            /// What a rotation that died between its two keyring steps leaves behind.
            func interruptedRotation(to secret: String, createdOffset: Int) async throws {
                await state.resetSecret(clientID: clientID, newSecret: secret)
                let store = try await runProcess(
                    "/usr/bin/secret-tool",
                    ["store", "--label=Risk Cloud credentials (\(profile))", "xdg:schema", "com.logicgate.rc-agent.Credentials",
                     "service", "rc-agent", "profile", profile,
                     "client_id", clientID, "url", url, "created", String(Int(Date().timeIntervalSince1970) + createdOffset)],
                    stdin: secret, environment: sandbox.environment)
                #expect(store.status == 0, "\(store)")
            }
            func storedItems() async throws -> Int? {
                let json = try await sandbox.rcAgent(["status", "--json", "--no-autostart", "--profile", profile])
                let parsed = try JSONSerialization.jsonObject(with: Data(json.stdout.utf8)) as? [String: Any]
                return (parsed?["profiles"] as? [[String: Any]])?.first?["stored_items"] as? Int
            }

            // No agent runs until the last part: its start-up housekeeping (500 ms after it
            // starts, later on a busy machine) would finish the rotation before `--resume` does.
            #expect(try await sandbox.rcAgent(["stop"]).status == 0)
            try await interruptedRotation(to: newSecret, createdOffset: 5)
            let status = try await sandbox.rcAgent(["status", "--no-autostart", "--profile", profile])
            #expect(status.stdout.contains("a rotation was interrupted: 2 secrets are stored"), "\(status)")
            #expect(status.stdout.contains("rc-agent rotate --resume --profile \(profile)"))

            let resume = try await sandbox.rcAgent(["rotate", "--resume", "--profile", profile])
            #expect(resume.status == 0, "\(resume)")
            #expect(resume.stderr.contains("the older secret was removed"))
            #expect(try await storedItems() == 1)
            #expect(try await TestKeyring.secret(profile: profile, environment: sandbox.environment) == newSecret)
            let again = try await sandbox.rcAgent(["rotate", "--resume", "--profile", profile])
            #expect(again.stderr.contains("nothing to finish"))

            // Interrupted once more; this time the next agent start finishes it, and its token
            // comes from the newest (verified) secret.
            let third = "third-" + UUID().uuidString
            sandbox.leaks.watch(third)
            try await interruptedRotation(to: third, createdOffset: 10)
            #expect(try await storedItems() == 2)
            _ = try await sandbox.rcAgent(["stop"])
            #expect(try await sandbox.rcAgent(["start"]).status == 0)
            var items = try await storedItems()
            for _ in 0..<50 where items != 1 {
                try await Task.sleep(nanoseconds: 100_000_000)
                items = try await storedItems()
            }
            #expect(items == 1, "the agent finishes an interrupted rotation when it starts")
            #expect(try await TestKeyring.secret(profile: profile, environment: sandbox.environment) == third)
            #expect(try await sandbox.rcAgent(["token", "--profile", profile]).status == 0)
        }
    }
}
