import Foundation
import RiskCloudStandIn
import RCAgentTestSupport
import Testing

/// `rc-agent api` as a user runs it: the built binary, an agent on the sandbox's socket, the real
/// (private) keyring and the stand-in tenant.
@Suite(.enabled(if: hasPrivateKeyring, "needs scripts/with-keyring.sh (make test)"))
struct ApiCLITests {
    /// Lets `api` start the agent itself (the sandbox turns autostart off).
    static let autostart = ["RC_AGENT_NO_AUTOSTART": "0"]

    /// The agent's token, registered as a value that must never appear in api's output.
    func watchToken(_ session: LoggedInSession) async throws {
        let token = try await session.run(["token"])
        #expect(token.status == 0, "\(token)")
        session.sandbox.leaks.watch(token.stdout.trimmingCharacters(in: .whitespacesAndNewlines))
    }

    @Test func fetchesRecordsWithTheAgentsToken() async throws {
        try await LoggedInSession.withLoggedIn { session, state, _ in
            let result = try await session.run(["api", "/api/v2/records"], env: Self.autostart)
            #expect(result.status == 0, "\(result)")
            #expect(result.stderr.isEmpty, "\(result)")
            let page = try #require(JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as? [String: Any])
            #expect((page["content"] as? [Any])?.count == 3)
            try await watchToken(session)

            let included = try await session.run(["api", "-i", "api/v2/records?size=1"])
            #expect(included.status == 0, "\(included)")
            #expect(included.stdout.hasPrefix("HTTP/1.1 200 OK\r\n"), "\(included)")
            #expect(included.stdout.lowercased().contains("content-type: application/json"))
            #expect(await state.apiRequestCount == 2)
            try session.sandbox.assertNoLeaks([result, included])
        }
    }

    /// On a terminal (a pseudo-terminal from `script`) the JSON is indented; piped it is the
    /// tenant's bytes unchanged.
    @Test func prettyOnATerminalRawWhenPiped() async throws {
        try await LoggedInSession.withLoggedIn { session, state, _ in
            let piped = try await session.run(["api", "/api/v2/records?size=2"], env: Self.autostart)
            #expect(piped.status == 0, "\(piped)")
            #expect(!piped.stdout.contains("\n  "), "raw when piped: \(piped)")
            let raw = try #require(JSONSerialization.jsonObject(with: Data(piped.stdout.utf8)) as? [String: Any])

            var environment = session.sandbox.environment.merging(Self.autostart) { $1 }
            environment["RC_BIN"] = Binaries.rcAgent
            environment["RC_P"] = session.profile
            let terminal = try await runProcess(
                "/usr/bin/script", ["-qec", #""$RC_BIN" api '/api/v2/records?size=2' --profile "$RC_P""#, "/dev/null"],
                environment: environment)
            #expect(terminal.status == 0, "\(terminal)")
            // The terminal turns \n into \r\n.
            let text = terminal.stdout.replacingOccurrences(of: "\r\n", with: "\n")
            #expect(text.contains("{\n  \""), "indented on a terminal: \(terminal)")
            let pretty = try #require(JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: Any], "\(terminal)")
            #expect(NSDictionary(dictionary: pretty).isEqual(to: raw), "the same document")
            #expect(await state.apiRequestCount == 2)
        }
    }

    @Test func paginateCollectsEveryPage() async throws {
        try await LoggedInSession.withLoggedIn { session, state, _ in
            await state.setRecordCount(45)
            let result = try await session.run(["api", "--paginate", "/api/v2/records?size=10"], env: Self.autostart)
            #expect(result.status == 0, "\(result)")
            let items = try #require(JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as? [[String: Any]])
            #expect(items.count == 45)
            #expect(items.compactMap { $0["id"] as? String } == (1...45).map { "rec\($0)" })
            #expect(await state.apiRequestCount == 5)
        }
    }

    @Test func a401MakesTheAgentRefreshOnceAndTheRequestIsRetried() async throws {
        try await LoggedInSession.withLoggedIn { session, state, _ in
            let first = try await session.run(["api", "/api/v2/records"], env: Self.autostart)
            #expect(first.status == 0, "\(first)")
            let minted = await state.mintedTokenCount
            await state.revokeAllTokens()
            let second = try await session.run(["api", "/api/v2/records"])
            #expect(second.status == 0, "\(second)")
            #expect(await state.mintedTokenCount == minted + 1)
            #expect(await state.apiRequestCount == 3, "first call, the refused one, the retry")

            // Refused even with a fresh token: one refresh only, then the diagnosis.
            await state.inject(.status(401, body: nil), times: 5, target: .api)
            let refused = try await session.run(["api", "/api/v2/records"])
            #expect(refused.status == 1, "\(refused)")
            #expect(refused.stderr.contains("refused a token its token endpoint had just issued"), "\(refused)")
            #expect(refused.stderr.contains("permission problems can come back as 401"), "\(refused)")
            #expect(await state.apiRequestCount == 5)
        }
    }

    @Test func nonSuccessIsBodyOnStdoutDiagnosisOnStderrExit1Or22() async throws {
        try await LoggedInSession.withLoggedIn { session, _, _ in
            let missing = try await session.run(["api", "/api/v2/nothing-here"], env: Self.autostart)
            #expect(missing.status == 1, "\(missing)")
            #expect(missing.stdout.contains("No handler found"))
            #expect(missing.stderr.contains("404 Not Found"))
            #expect(missing.stderr.contains("Guide case"))
            let failing = try await session.run(["api", "--fail", "/api/v2/nothing-here"])
            #expect(failing.status == 22, "\(failing)")
            #expect(failing.stdout.contains("No handler found"))
        }
    }

    @Test func restrictedClientGets403WithTheGuidesSteps() async throws {
        try await LoggedInSession.withLoggedIn(restricted: true) { session, _, _ in
            let result = try await session.run(["api", "/api/v2/applications"], env: Self.autostart)
            #expect(result.status == 1, "\(result)")
            #expect(result.stdout.contains("Access is denied"))
            #expect(result.stderr.contains("403 Forbidden"))
            #expect(result.stderr.contains("Build Access"))
        }
    }

    @Test func postSendsTheBodyFromAFileOrStdin() async throws {
        try await LoggedInSession.withLoggedIn { session, _, _ in
            let file = session.sandbox.root + "/body.txt"
            try "this is not JSON".write(toFile: file, atomically: true, encoding: .utf8)
            // The stand-in's token endpoint answers a non-JSON body with 400 and the spec's message.
            let fromFile = try await session.run(
                ["api", "-X", "POST", "/api/v1/account/token", "-d", "@" + file], env: Self.autostart)
            #expect(fromFile.status == 1, "\(fromFile)")
            #expect(fromFile.stdout.contains("Malformed JSON request body"))
            #expect(fromFile.stderr.contains("400 Bad Request"))

            let fromStdin = try await session.run(
                ["api", "/api/v1/account/token", "-d", "-"], stdin: "still not JSON")
            #expect(fromStdin.status == 1, "\(fromStdin)")
            #expect(fromStdin.stdout.contains("Malformed JSON request body"))

            let wrongMethod = try await session.run(["api", "/api/v2/applications", "-d", #"{"name":"x"}"#])
            #expect(wrongMethod.status == 1, "\(wrongMethod)")
            #expect(wrongMethod.stdout.contains("Request method 'POST' is not supported"))
        }
    }

    @Test func authorizationHeaderAndAbsoluteURLsAreRefused() async throws {
        let sandbox = try Sandbox()
        let value = "Bearer do-not-echo-" + UUID().uuidString
        sandbox.leaks.watch(value)
        let header = try await sandbox.rcAgent(["api", "-H", "Authorization: \(value)", "/api/v2/records"])
        #expect(header.status == 64, "\(header)")
        #expect(header.stderr.contains("set by rc-agent"))
        let absolute = try await sandbox.rcAgent(["api", "https://elsewhere.example.com/api/v2/records"])
        #expect(absolute.status == 64, "\(absolute)")
        #expect(absolute.stderr.contains("relative to the tenant"))
        let help = try await sandbox.rcAgent(["api", "--help"])
        let words = help.stdout.split(whereSeparator: \.isWhitespace).joined(separator: " ")
        #expect(words.contains("Authorization header given with -H is refused"))
        try sandbox.assertNoLeaks([header, absolute])
        sandbox.remove()
    }

    /// A header argument with a credential in it is never echoed, however it is malformed.
    @Test func malformedHeadersAreRefusedWithoutTheirValue() async throws {
        let sandbox = try Sandbox()
        let value = "do-not-echo-" + UUID().uuidString
        sandbox.leaks.watch(value)
        var results: [CLIResult] = []
        for header in ["X-Api-Key \(value)", "X Api Key: \(value)", "Authorization: \(value)"] {
            let result = try await sandbox.rcAgent(["api", "-H", "Accept: application/json", "-H", header, "/api/v2/records"])
            #expect(result.status == 64, "\(result)")
            #expect(result.stderr.contains("-H option #2") || result.stderr.contains("Authorization"), "\(result)")
            results.append(result)
        }
        try sandbox.assertNoLeaks(results)
        sandbox.remove()
    }

    /// A tenant answer with terminal escapes: the diagnosis on stderr carries its words, not its escapes.
    @Test func theDiagnosisShowsNoTerminalEscapesFromTheTenant() async throws {
        try await LoggedInSession.withLoggedIn { session, state, _ in
            await state.inject(
                .status(503, body: "\u{1B}]0;owned\u{07}\u{1B}[2J\u{1B}[31mmaintenance\u{1B}[0m \u{9B}1mwindow\u{08}\u{7F}"),
                times: 1, target: .api)
            let result = try await session.run(["api", "/api/v2/records"], env: Self.autostart)
            #expect(result.status == 1, "\(result)")
            #expect(result.stderr.contains("maintenance"), "\(result)")
            #expect(result.stderr.contains("window"), "\(result)")
            let controls = result.stderr.unicodeScalars.filter {
                ($0.value < 0x20 && $0 != "\n") || (0x7F...0x9F).contains($0.value)
            }
            #expect(controls.isEmpty, "control characters on stderr: \(controls.map { String($0.value, radix: 16) })")
        }
    }

    @Test func withoutAnAgentAndAutostartOffItIsExit3() async throws {
        try await LoggedInSession.withLoggedIn { session, _, _ in
            let result = try await session.run(["api", "/api/v2/records"])
            #expect(result.status == 3, "\(result)")
            #expect(result.stderr.contains("rc-agent start"))
        }
    }
}
