import Foundation
import RiskCloudStandIn
import RCAgentTestSupport
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// `rc-agent doctor` as a user runs it: the built binary, the real (private) keyring, the stand-in
/// producing each of the troubleshooting guide's cases.
@Suite(.enabled(if: hasPrivateKeyring, "needs scripts/with-keyring.sh (make test)"))
struct DoctorCLITests {
    static let order = ["config", "credentials", "tenant", "auth", "records", "permissions", "agent", "rotation"]

    /// The check lines of the human output, by id: (mark, rest of the line).
    static func lines(_ output: String) -> [String: (mark: String, text: String)] {
        var found: [String: (mark: String, text: String)] = [:]
        for line in output.split(separator: "\n") {
            let parts = line.split(separator: " ", maxSplits: 2, omittingEmptySubsequences: true)
            guard parts.count >= 2, order.contains(String(parts[1])) else { continue }
            found[String(parts[1])] = (String(parts[0]), parts.count > 2 ? String(parts[2]) : "")
        }
        return found
    }

    /// `doctor --json`, decoded; checks that the document has exactly the documented shape.
    static func json(_ result: CLIResult) throws -> (checks: [String: [String: Any]], ids: [String], ok: Bool) {
        let document = try #require(
            JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as? [String: Any], "\(result)")
        #expect(Set(document.keys) == ["checks", "ok"])
        let checks = try #require(document["checks"] as? [[String: Any]])
        for check in checks {
            #expect(Set(check.keys) == ["id", "status", "message", "hint", "elapsed_ms"], "\(check)")
            #expect(check["elapsed_ms"] is Int)
            #expect(["ok", "fail", "warn", "skip"].contains(check["status"] as? String ?? ""))
        }
        let ids = checks.compactMap { $0["id"] as? String }
        let byID = Dictionary(uniqueKeysWithValues: checks.map { ($0["id"] as? String ?? "", $0) })
        return (byID, ids, try #require(document["ok"] as? Bool))
    }

    @Test func allGreenWithARunningAgent() async throws {
        try await LoggedInSession.withLoggedIn { session, state, url in
            try await session.startAgent()
            let human = try await session.run(["doctor"])
            #expect(human.status == 0, "\(human)")
            let lines = Self.lines(human.stdout)
            #expect(lines.count == Self.order.count, "\(human)")
            for id in Self.order { #expect(lines[id]?.mark == "✓", "\(id): \(human)") }
            #expect(lines["agent"]?.text.contains("0700") == true)

            let json = try await session.run(["doctor", "--json"])
            #expect(json.status == 0, "\(json)")
            let parsed = try Self.json(json)
            #expect(parsed.ids == Self.order)
            #expect(parsed.ok)
            for id in Self.order { #expect(parsed.checks[id]?["status"] as? String == "ok", "\(id)") }
            #expect(parsed.checks["auth"]?["hint"] is NSNull)
            try session.sandbox.assertNoLeaks([human, json])
        }
    }

    @Test func agentNotRunningIsAWarningNotAFailure() async throws {
        try await LoggedInSession.withLoggedIn { session, state, url in
            let result = try await session.run(["doctor", "--json"])
            #expect(result.status == 0, "\(result)")
            let parsed = try Self.json(result)
            #expect(parsed.ok)
            #expect(parsed.checks["agent"]?["status"] as? String == "warn")
            #expect((parsed.checks["agent"]?["message"] as? String)?.contains("no agent is running") == true)
            #expect((parsed.checks["agent"]?["hint"] as? String)?.contains("rc-agent start") == true)
        }
    }

    @Test func resetSecretIs401WithResetHintAndExit4() async throws {
        try await LoggedInSession.withLoggedIn { session, state, url in
            await state.resetSecret(clientID: session.clientID, newSecret: "other-" + UUID().uuidString)
            let result = try await session.run(["doctor"])
            #expect(result.status == 4, "\(result)")
            let lines = Self.lines(result.stdout)
            #expect(lines["auth"]?.mark == "✗")
            #expect(lines["auth"]?.text.contains("401") == true)
            #expect(result.stdout.contains("Reset Secret Key"))
            #expect(result.stdout.contains("rc-agent rotate --profile \(session.profile)"))
            #expect(lines["records"]?.mark == "-")
            #expect(lines["permissions"]?.mark == "-")
            #expect(lines["tenant"]?.mark == "✓")
            try session.sandbox.assertNoLeaks([result])
        }
    }

    /// Each locally detectable 401 mistake, stored the way it happens in real life.
    @Test(arguments: ["same-as-id", "base64", "newline"])
    func detectableMistakesAreNamed(_ mistake: String) async throws {
        let session = try LoggedInSession()
        let state = StandInState()
        await state.addClient(id: session.clientID, secret: session.secret)
        try await withStandIn(state) { url in
            let expected: String
            switch mistake {
            case "same-as-id":
                try await session.login(url, secret: session.clientID, extra: ["--no-verify"])
                expected = "identical"
            case "base64":
                let encoded = Data("\(session.clientID):\(session.secret)".utf8).base64EncodedString()
                session.sandbox.leaks.watch(encoded)
                try await session.login(url, secret: encoded, extra: ["--no-verify"])
                expected = "base64 of 'ID:SECRET'"
            default:
                // login trims whitespace, so store the item the way `secret-tool store` does: verbatim.
                try await session.login(url)
                _ = try await session.sandbox.rcAgent(["logout", "--profile", session.profile])
                let stored = try await runProcess(
                    "/usr/bin/secret-tool",
                    ["store", "--label=test", "xdg:schema", "com.logicgate.rc-agent.Credentials", "service", "rc-agent", "profile", session.profile, "client_id",
                     session.clientID, "url", url, "created", String(Int(Date().timeIntervalSince1970))],
                    stdin: session.secret + "\n", environment: session.sandbox.environment)
                #expect(stored.status == 0, "\(stored)")
                expected = "spaces or line breaks"
            }
            let result = try await session.run(["doctor"])
            #expect(result.status == 4, "\(result)")
            #expect(Self.lines(result.stdout)["auth"]?.text.contains(expected) == true, "\(result)")
            #expect(result.stdout.contains("Profile → Access Key"))
            try session.sandbox.assertNoLeaks([result])
        }
        try await session.finish()
    }

    /// A config others can write (it could add trust roots with `ca_file`): a warning in doctor
    /// and in status; chmod 600 makes it go away.
    @Test func aConfigOthersCanWriteIsAWarningInDoctorAndStatus() async throws {
        try await LoggedInSession.withLoggedIn { session, _, _ in
            let config = session.sandbox.configPath
            #expect(chmod(config, 0o666) == 0)
            let doctor = try await session.run(["doctor"])
            let line = Self.lines(doctor.stdout)["config"]
            #expect(line?.mark == "!", "\(doctor)")
            #expect(line?.text.contains("\(config) is writable by everyone (mode 666)") == true, "\(doctor)")
            let status = try await session.run(["status"])
            #expect(status.stdout.contains("warning: \(config) is writable by everyone"), "\(status)")

            #expect(chmod(config, 0o600) == 0)
            let fixed = try await session.run(["doctor"])
            #expect(Self.lines(fixed.stdout)["config"]?.mark == "✓", "\(fixed)")
            #expect(!(try await session.run(["status"])).stdout.contains("writable"))
        }
    }

    @Test func wrongPathOrBaseIs404() async throws {
        try await LoggedInSession.withLoggedIn { session, state, url in
            await state.inject(
                .status(404, body: #"{"status":404,"message":"No handler found"}"#), times: 1, target: .api)
            let result = try await session.run(["doctor"])
            #expect(result.status == 1, "\(result)")
            let lines = Self.lines(result.stdout)
            #expect(lines["records"]?.mark == "✗")
            #expect(lines["records"]?.text.contains("404 Not Found") == true)
            #expect(result.stdout.contains("check the tenant URL"))
            #expect(lines["permissions"]?.mark == "-")
        }
    }

    @Test func badRequestShowsTheTenantsMessage() async throws {
        try await LoggedInSession.withLoggedIn { session, state, url in
            await state.inject(
                .status(400, body: #"{"property":"size","value":"1","message":"size is not allowed"}"#), times: 1,
                target: .api)
            let result = try await session.run(["doctor"])
            #expect(result.status == 1, "\(result)")
            #expect(Self.lines(result.stdout)["records"]?.text.contains("400 Bad Request") == true)
            #expect(result.stdout.contains("size is not allowed"))
        }
    }

    @Test func rejectedTokenIsRefetchedOnceThenReported() async throws {
        try await LoggedInSession.withLoggedIn { session, state, url in
            await state.inject(.status(401, body: nil), times: 1, target: .api)
            let once = try await session.run(["doctor"])
            #expect(once.status == 0, "\(once)")
            let replaced = try #require(Self.lines(once.stdout)["records"], "\(once)")
            #expect(replaced.mark == "!", "a token refused moments after it was issued is a warning: \(once)")
            #expect(replaced.text.contains("a token generated elsewhere for the same Client ID"), "\(once)")
            #expect(once.stdout.contains("its own service account"), "\(once)")

            await state.inject(.status(401, body: nil), times: 2, target: .api)
            let before = await state.tokenRequestCount
            let twice = try await session.run(["doctor"])
            #expect(twice.status == 1, "\(twice)")
            let refused = try #require(Self.lines(twice.stdout)["records"], "\(twice)")
            #expect(refused.text.contains("refused a token its token endpoint had just issued"), "\(twice)")
            #expect(refused.text.contains("generated elsewhere for the same Client ID"), "\(twice)")
            #expect(refused.text.contains("permission problems can come back as 401, as 403 or as an empty list"))
            #expect(await state.tokenRequestCount == before + 2, "one token for auth, one refetch")
        }
    }

    @Test func noRecordsIsAWarningNotASuccess() async throws {
        try await LoggedInSession.withLoggedIn { session, state, url in
            await state.setRecordCount(0)
            let result = try await session.run(["doctor"])
            #expect(result.status == 0, "\(result)")
            let line = try #require(Self.lines(result.stdout)["records"], "\(result)")
            #expect(line.mark == "!", "\(result)")
            #expect(line.text.contains("0 records visible"), "\(result)")
            #expect(line.text.contains("list endpoints leave out records the user cannot see"), "\(result)")
            await state.setRecordCount(1)
            let one = try await session.run(["doctor"])
            #expect(Self.lines(one.stdout)["records"]?.mark == "✓", "\(one)")
        }
    }

    @Test func restrictedClientIsAWarningAndExit0() async throws {
        try await LoggedInSession.withLoggedIn(restricted: true) { session, state, url in
            let result = try await session.run(["doctor"])
            #expect(result.status == 0, "\(result)")
            let line = try #require(Self.lines(result.stdout)["permissions"])
            #expect(line.mark == "!")
            #expect(line.text.contains("403 Forbidden"))
            #expect(line.text.contains("Build Access"))
            #expect(result.stdout.contains("try the same thing in the Risk Cloud UI"))
            let json = try Self.json(try await session.run(["doctor", "--json"]))
            #expect(json.ok)
            #expect(json.checks["permissions"]?["status"] as? String == "warn")
        }
    }

    @Test(arguments: [("token", "auth"), ("api", "records")])
    func serverErrorIsExit6(_ target: String, _ check: String) async throws {
        try await LoggedInSession.withLoggedIn { session, state, url in
            await state.inject(.status(503, body: "down for maintenance"), target: target == "api" ? .api : .token)
            let result = try await session.run(["doctor"])
            #expect(result.status == 6, "\(result)")
            #expect(Self.lines(result.stdout)[check]?.mark == "✗", "\(result)")
            #expect(Self.lines(result.stdout)[check]?.text.contains("HTTP 503") == true)
        }
    }

    @Test func unreachableTenantIsExit6AndSkipsTheTenantChecks() async throws {
        let session = try LoggedInSession()
        // Port 9 (discard) on loopback: nothing listens there.
        try await session.login("http://127.0.0.1:9", extra: ["--no-verify"])
        let result = try await session.run(["doctor"])
        #expect(result.status == 6, "\(result)")
        let lines = Self.lines(result.stdout)
        #expect(lines["credentials"]?.mark == "✓")
        #expect(lines["tenant"]?.mark == "✗")
        #expect(lines["tenant"]?.text.contains("refused") == true)
        for id in ["auth", "records", "permissions"] { #expect(lines[id]?.mark == "-", "\(id)") }
        #expect(lines["rotation"]?.mark == "✓")
        try await session.finish()
    }

    @Test func notLoggedInIsExit2() async throws {
        let session = try LoggedInSession()
        try await withStandIn(StandInState()) { url in
            try FileManager.default.createDirectory(
                atPath: session.sandbox.root + "/config/rc-agent", withIntermediateDirectories: true)
            try "[profiles.\(session.profile)]\nurl = \"\(url)\"\n".write(
                toFile: session.sandbox.configPath, atomically: true, encoding: .utf8)
            let result = try await session.run(["doctor"])
            #expect(result.status == 2, "\(result)")
            let lines = Self.lines(result.stdout)
            #expect(lines["config"]?.mark == "✓")
            #expect(lines["credentials"]?.mark == "✗")
            #expect(result.stdout.contains("rc-agent login --profile \(session.profile)"))
            #expect(lines["tenant"]?.mark == "✓", "the tenant does not need credentials")
            #expect(lines["auth"]?.mark == "-")
            #expect(lines["rotation"]?.mark == "-")
        }
        try await session.finish()
    }

    @Test func unknownProfileFailsTheConfigCheck() async throws {
        let session = try LoggedInSession()
        let result = try await session.run(["doctor", "--json"])
        #expect(result.status == 2, "\(result)")
        let parsed = try Self.json(result)
        #expect(!parsed.ok)
        #expect(parsed.ids == Self.order)
        #expect(parsed.checks["config"]?["status"] as? String == "fail")
        #expect(parsed.checks["credentials"]?["status"] as? String == "skip")
        session.sandbox.remove()
    }

    @Test func overdueRotationIsAWarning() async throws {
        try await LoggedInSession.withLoggedIn { session, state, url in
            let config = try String(contentsOfFile: session.sandbox.configPath, encoding: .utf8)
            try (config + "rotate_after_days = 0\n").write(
                toFile: session.sandbox.configPath, atomically: true, encoding: .utf8)
            let result = try await session.run(["doctor"])
            #expect(result.status == 0, "\(result)")
            let line = try #require(Self.lines(result.stdout)["rotation"])
            #expect(line.mark == "!")
            #expect(line.text.contains("rc-agent rotate --profile \(session.profile)"))
        }
    }
}
