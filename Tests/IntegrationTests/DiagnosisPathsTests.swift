import Foundation
import RCAgentCore
import RCAgentTestSupport
import RiskCloudStandIn
import Testing

/// "Diagnosis in one place": each case of the vendor's guide, walked through every path a user can
/// meet it on (login, token, rotate, api, the socket proxy, doctor), must say the same thing — the
/// message and code of the one diagnosis module, `RiskCloudError`.
@Suite(.enabled(if: hasPrivateKeyring, "needs scripts/with-keyring.sh (make test)"))
struct DiagnosisPathsTests {
    /// What the diagnosis module says for `status` at `path`.
    func expected(_ status: Int, path: String, url: String, endpoint: RiskCloudError.Endpoint, body: String = "")
        throws -> RiskCloudError
    {
        try #require(
            RiskCloudError.forResponse(
                status: status, headers: [], body: Array(body.utf8), tenant: TenantURL(parsing: url), path: path,
                endpoint: endpoint, now: Date()))
    }

    /// The proxy's `X-RC-Agent-Diagnosis` header for `target` (nil when absent).
    func proxyDiagnosis(_ session: LoggedInSession, _ target: String) async throws -> String? {
        let run = try await runProcess(
            "/usr/bin/curl",
            ["-sS", "-D", "-", "-o", "/dev/null", "--unix-socket", session.sandbox.socketPath, "http://localhost" + target],
            environment: session.sandbox.environment)
        return run.stdout.split(separator: "\r\n").first { $0.lowercased().hasPrefix("x-rc-agent-diagnosis:") }
            .map { $0.split(separator: ":", maxSplits: 1)[1].trimmingCharacters(in: .whitespaces) }
    }

    @Test func rejectedCredentialsSayTheSameOnEveryPath() async throws {
        try await LoggedInSession.withLoggedIn { session, state, url in
            try await session.startAgent()
            let wrong = "wrong-" + UUID().uuidString
            session.sandbox.leaks.watch(wrong)
            // The secret was reset in Risk Cloud: the stored one is refused from now on.
            await state.resetSecret(clientID: session.clientID, newSecret: "reset-" + UUID().uuidString)
            let diagnosis = try expected(401, path: "/api/v1/account/token", url: url, endpoint: .token)

            let login = try await session.attemptLogin(url, secret: wrong)
            let rotate = try await session.run(["rotate", "--client-secret-stdin"], stdin: wrong)
            let token = try await session.run(["token"])
            let api = try await session.run(["api", "/api/v2/records"])
            for (name, result) in [("login", login), ("rotate", rotate), ("token", token), ("api", api)] {
                #expect(result.status == 4, "\(name): \(result)")
                #expect(result.stderr.contains(diagnosis.message), "\(name) says it differently: \(result.stderr)")
            }
            let doctor = try await session.run(["doctor", "--json"])
            #expect(doctor.status == 4, "\(doctor)")
            #expect(doctor.stdout.contains("Guide case \\\"401 Unauthorized\\\""), "\(doctor.stdout)")
            #expect(try await proxyDiagnosis(session, "/v1/proxy/\(session.profile)/api/v2/records") == diagnosis.code.name)
            try session.sandbox.assertNoLeaks([login, rotate, token, api, doctor])
        }
    }

    @Test(arguments: [
        (403, "/api/v2/applications?page=0&size=1"),
        (404, "/api/v2/no-such-endpoint"),
        (400, "/api/v2/records?page=0&size=0"),
    ])
    func apiCasesSayTheSameOnEveryPath(status: Int, path: String) async throws {
        try await LoggedInSession.withLoggedIn(restricted: status == 403) { session, state, url in
            try await session.startAgent()
            let api = try await session.run(["api", path])
            #expect(api.status == 1, "\(api)")
            // The tenant's own message (400) is part of the diagnosis: take it from what came back.
            let body = api.stdout
            let diagnosis = try expected(
                status, path: String(path.split(separator: "?")[0]), url: url, endpoint: .api, body: body)
            let firstSentence = String(diagnosis.message.split(separator: ".")[0])
            #expect(api.stderr.contains(firstSentence), "api: \(api.stderr)")
            #expect(api.stderr.contains(diagnosis.hint ?? "—"), "api hint: \(api.stderr)")
            #expect(try await proxyDiagnosis(session, "/v1/proxy/\(session.profile)\(path)") == diagnosis.code.name)
            if status == 403 {
                // doctor's permissions step is this exact request: a warning with the same diagnosis.
                let doctor = try await session.run(["doctor"])
                #expect(doctor.status == 0, "\(doctor)")
                #expect(doctor.stdout.contains("Guide case \"403 Forbidden\""), "\(doctor.stdout)")
            }
        }
    }
}
