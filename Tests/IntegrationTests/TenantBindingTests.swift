import Foundation
import RCAgentTestSupport
import RiskCloudStandIn
import Testing

extension HardeningTests {
    /// A stored secret goes only to the URL stored with it: `doctor` and `rotate` refuse a tenant
    /// named by `RC_AGENT_URL` or the config file that differs from it, before any request. The
    /// second stand-in knows the same Client ID and Secret, so a secret sent there would be accepted.
    @Suite struct TenantBindingTests {
        /// A second stand-in that would accept the session's credentials.
        private static func withSecondTenant(
            _ session: LoggedInSession, _ body: (StandInState, String) async throws -> Void
        ) async throws {
            let other = StandInState()
            await other.addClient(id: session.clientID, secret: session.secret)
            try await withStandIn(other) { try await body(other, $0) }
        }

        @Test func doctorRefusesRCAgentURLNamingAnotherTenant() async throws {
            try await LoggedInSession.withLoggedIn { session, state, url in
                try await Self.withSecondTenant(session) { other, otherURL in
                    let before = await state.tokenRequestCount
                    let result = try await session.run(["doctor"], env: ["RC_AGENT_URL": otherURL])
                    #expect(result.status == 64, "\(result)")
                    let credentials = DoctorCLITests.lines(result.stdout)["credentials"]
                    #expect(credentials?.mark == "✗", "\(result)")
                    #expect(
                        credentials?.text.contains("stored for \(url), but RC_AGENT_URL names \(otherURL)") == true, "\(result)")
                    #expect(result.stdout.contains("rc-agent login --profile \(session.profile) --url \(otherURL)"), "\(result)")
                    #expect(DoctorCLITests.lines(result.stdout)["auth"]?.mark == "-", "auth is skipped: \(result)")
                    #expect(await other.tokenRequestCount == 0, "no token request reached the other tenant")
                    #expect(await other.apiRequestCount == 0)
                    #expect(await state.tokenRequestCount == before)
                    try session.sandbox.assertNoLeaks([result])
                }
            }
        }

        @Test func rotateRefusesAConfigURLNamingAnotherTenantAndKeepsTheCredentials() async throws {
            try await LoggedInSession.withLoggedIn { session, state, url in
                try await Self.withSecondTenant(session) { other, otherURL in
                    let config = try String(contentsOfFile: session.sandbox.configPath, encoding: .utf8)
                    #expect(config.contains("url = \"\(url)\""), "\(config)")
                    try config.replacingOccurrences(of: "url = \"\(url)\"", with: "url = \"\(otherURL)\"")
                        .write(toFile: session.sandbox.configPath, atomically: true, encoding: .utf8)
                    let newSecret = "rotated-" + UUID().uuidString
                    session.sandbox.leaks.watch(newSecret)
                    await other.resetSecret(clientID: session.clientID, newSecret: newSecret)

                    let rotate = try await session.run(["rotate", "--client-secret-stdin"], stdin: newSecret + "\n")
                    #expect(rotate.status == 64, "\(rotate)")
                    #expect(
                        rotate.stderr.contains("stored for \(url), but \(session.sandbox.configPath) names \(otherURL)"),
                        "\(rotate)")
                    #expect(rotate.stderr.contains("rc-agent login --profile \(session.profile) --url \(otherURL)"))
                    #expect(await other.tokenRequestCount == 0, "no token request reached the other tenant")

                    // The stored credentials are untouched: back on the stored URL they still work.
                    try config.write(toFile: session.sandbox.configPath, atomically: true, encoding: .utf8)
                    let before = await state.tokenRequestCount
                    let doctor = try await session.run(["doctor"])
                    #expect(DoctorCLITests.lines(doctor.stdout)["auth"]?.mark == "✓", "\(doctor)")
                    #expect(await state.tokenRequestCount == before + 1, "one token request, to the stored tenant")
                    try session.sandbox.assertNoLeaks([rotate, doctor])
                }
            }
        }
    }
}
