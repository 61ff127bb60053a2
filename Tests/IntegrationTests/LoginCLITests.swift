import Foundation
import RiskCloudStandIn
import RCAgentTestSupport
import Testing

/// `rc-agent login`, `logout` and `status` as a user runs them: the built binary, the real
/// (private) gnome-keyring, the stand-in tenant on loopback.
@Suite(.enabled(if: hasPrivateKeyring, "needs scripts/with-keyring.sh (make test)"))
struct LoginCLITests {
    let session: LoggedInSession
    var sandbox: Sandbox { session.sandbox }
    var profile: String { session.profile }
    var clientID: String { session.clientID }
    var secret: String { session.secret }

    init() throws {
        session = try LoggedInSession()
    }

    func login(_ url: String, secret: String, extra: [String] = []) async throws -> CLIResult {
        try await session.attemptLogin(url, secret: secret, extra: extra)
    }

    @Test func loginStoresInKeyringAndConfig() async throws {
        let state = StandInState()
        await state.addClient(id: clientID, secret: secret)
        try await withStandIn(state) { url in
            let result = try await login(url, secret: secret)
            #expect(result.status == 0, "\(result)")
            #expect(result.stdout.isEmpty, "login keeps stdout free")
            #expect(result.stderr.contains("Logged in"))
            #expect(await state.tokenRequestCount == 1)

            let attributes = try await TestKeyring.attributes(profile: profile, environment: sandbox.environment)
            #expect(attributes["client_id"] == clientID)
            #expect(attributes["url"] == url)
            #expect(attributes["service"] == "rc-agent")
            let created = try #require(attributes["created"].flatMap(Double.init))
            #expect(abs(created - Date().timeIntervalSince1970) < 600)
            #expect(try await TestKeyring.secret(profile: profile, environment: sandbox.environment) == secret)

            let config = try String(contentsOfFile: sandbox.configPath, encoding: .utf8)
            #expect(config.contains("[profiles.\(profile)]"))
            #expect(config.contains("url = \"\(url)\""))
            let mode = try FileManager.default.attributesOfItem(atPath: sandbox.configPath)[.posixPermissions] as? Int
            #expect(mode == 0o600)

            let status = try await sandbox.rcAgent(["status", "--json", "--profile", profile])
            #expect(status.status == 0, "\(status)")
            let json = try #require(
                JSONSerialization.jsonObject(with: Data(status.stdout.utf8)) as? [String: Any])
            let profiles = try #require(json["profiles"] as? [[String: Any]])
            #expect(profiles.count == 1)
            #expect(profiles.first?["secret_stored"] as? Bool == true)
            #expect(profiles.first?["keyring"] as? String == "ok")
            #expect(profiles.first?["secret_age_days"] as? Int == 0)
            #expect(json["keyring"] as? String == "ok")
            try sandbox.assertNoLeaks([result, status])
        }
        _ = try await sandbox.rcAgent(["logout", "--profile", profile])
    }

    @Test func wrongSecretKeepsEarlierCredentialsByteForByte() async throws {
        let state = StandInState()
        await state.addClient(id: clientID, secret: secret)
        let wrong = "wrong-" + UUID().uuidString
        sandbox.leaks.watch(wrong)
        try await withStandIn(state) { url in
            #expect(try await login(url, secret: secret).status == 0)
            let before = try await TestKeyring.attributes(profile: profile, environment: sandbox.environment)
            let configBefore = try Data(contentsOf: URL(fileURLWithPath: sandbox.configPath))

            let failed = try await login(url, secret: wrong)
            #expect(failed.status == 4, "\(failed)")
            #expect(failed.stderr.contains("401"))
            #expect(failed.stderr.contains("Reset Secret Key"))

            #expect(try await TestKeyring.attributes(profile: profile, environment: sandbox.environment) == before)
            #expect(try await TestKeyring.secret(profile: profile, environment: sandbox.environment) == secret)
            #expect(try Data(contentsOf: URL(fileURLWithPath: sandbox.configPath)) == configBefore)
            try sandbox.assertNoLeaks([failed])
        }
        _ = try await sandbox.rcAgent(["logout", "--profile", profile])
    }

    @Test func reloginWithSameSecretKeepsCreatedAndNewSecretResetsIt() async throws {
        let state = StandInState()
        await state.addClient(id: clientID, secret: secret)
        try await withStandIn(state) { url in
            #expect(try await login(url, secret: secret).status == 0)
            let first = try await TestKeyring.attributes(profile: profile, environment: sandbox.environment)
            // `created` has one-second resolution: make sure a new value would differ.
            try await Task.sleep(nanoseconds: 1_100_000_000)
            let again = try await login(url, secret: "  " + secret + " ")
            #expect(again.status == 0, "\(again)")
            #expect(again.stderr.contains("removed spaces or newlines around the Client Secret"))
            let second = try await TestKeyring.attributes(profile: profile, environment: sandbox.environment)
            #expect(second["created"] == first["created"])
            #expect(try await TestKeyring.secret(profile: profile, environment: sandbox.environment) == secret)

            let newSecret = "new-" + UUID().uuidString
            sandbox.leaks.watch(newSecret)
            await state.resetSecret(clientID: clientID, newSecret: newSecret)
            #expect(try await login(url, secret: newSecret).status == 0)
            let third = try await TestKeyring.attributes(profile: profile, environment: sandbox.environment)
            #expect(third["created"] != first["created"])
        }
        _ = try await sandbox.rcAgent(["logout", "--profile", profile])
    }

    @Test func noVerifyStoresWithoutContactingTheTenant() async throws {
        let state = StandInState()
        try await withStandIn(state) { url in
            let result = try await login(url, secret: secret, extra: ["--no-verify"])
            #expect(result.status == 0, "\(result)")
            #expect(await state.tokenRequestCount == 0)
            #expect(try await TestKeyring.secret(profile: profile, environment: sandbox.environment) == secret)
        }
        _ = try await sandbox.rcAgent(["logout", "--profile", profile])
    }

    @Test func unreachableTenantExits6AndStoresNothing() async throws {
        // Port 9 (discard) on loopback: nothing listens there.
        let result = try await login("http://127.0.0.1:9", secret: secret)
        #expect(result.status == 6, "\(result)")
        #expect(try await TestKeyring.secret(profile: profile, environment: sandbox.environment) == nil)
        #expect(!FileManager.default.fileExists(atPath: sandbox.configPath))
    }

    @Test func plainHTTPIsRefusedForNonLoopbackHosts() async throws {
        let result = try await login("http://acme.logicgate.com", secret: secret)
        #expect(result.status == 64, "\(result)")
        #expect(result.stderr.contains("loopback"))
    }

    @Test func withoutTerminalOrStdinFlagItIsAUsageError() async throws {
        let result = try await sandbox.rcAgent(
            ["login", "--profile", profile, "--url", "http://127.0.0.1:9", "--client-id", clientID])
        #expect(result.status == 64, "\(result)")
        #expect(result.stderr.contains("--client-secret-stdin"))
    }

    @Test func secretIsNeverAnArgument() async throws {
        let help = try await sandbox.rcAgent(["login", "--help"])
        #expect(help.status == 0)
        #expect(!help.stdout.contains("--client-secret "))
        #expect(!help.stdout.contains("--secret"))
        let result = try await sandbox.rcAgent(["login", "--client-secret", "x"])
        #expect(result.status == 64)
    }

    @Test func logoutIsIdempotentAndStatusThenSaysNotLoggedIn() async throws {
        let state = StandInState()
        await state.addClient(id: clientID, secret: secret)
        try await withStandIn(state) { url in
            let result = try await login(url, secret: secret)
            #expect(result.status == 0, "\(result)")
        }
        let first = try await sandbox.rcAgent(["logout", "--profile", profile])
        #expect(first.status == 0, "\(first)")
        #expect(first.stderr.contains("removed credentials for \(profile)"))
        #expect(first.stderr.contains("stays valid on the tenant until it expires or a new one is generated"), "\(first)")
        #expect(first.stderr.contains("Reset Secret Key"), "\(first)")
        let second = try await sandbox.rcAgent(["logout", "--profile", profile])
        #expect(second.status == 0, "\(second)")
        #expect(try await TestKeyring.secret(profile: profile, environment: sandbox.environment) == nil)
        let status = try await sandbox.rcAgent(["status", "--profile", profile])
        #expect(status.status == 2, "\(status)")
        #expect(status.stdout.contains("rc-agent login --profile \(profile)"))
    }

    @Test func noSessionBusIsKeyringUnavailable() async throws {
        let result = try await sandbox.rcAgent(
            ["status", "--profile", profile], env: ["DBUS_SESSION_BUS_ADDRESS": "unix:path=/nonexistent/bus"])
        #expect(result.status == 5, "\(result)")
        #expect(result.stdout.contains("keyring: unavailable"))
        let login = try await sandbox.rcAgent(
            ["login", "--profile", profile, "--url", "http://127.0.0.1:9", "--client-id", clientID,
             "--client-secret-stdin", "--no-verify"],
            stdin: secret, env: ["DBUS_SESSION_BUS_ADDRESS": "unix:path=/nonexistent/bus"])
        #expect(login.status == 5, "\(login)")
        #expect(login.stderr.contains("Secret Service"))
        try sandbox.assertNoLeaks([result, login])
    }

    @Test func malformedConfigNamesFileLineAndKey() async throws {
        try FileManager.default.createDirectory(
            atPath: sandbox.root + "/config/rc-agent", withIntermediateDirectories: true)
        try "[profiles.default]\nurl = 5\n".write(toFile: sandbox.configPath, atomically: true, encoding: .utf8)
        let result = try await sandbox.rcAgent(["status"])
        #expect(result.status == 1, "\(result)")
        #expect(result.stderr.contains("config.toml:2: 'profiles.default.url' must be a string"))
    }
}
