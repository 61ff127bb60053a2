import Foundation
import RCAgentTestSupport
import RiskCloudStandIn
import Testing

#if canImport(Glibc)
import Glibc
#endif

extension HardeningTests {
    /// rc-agent against the stand-in over TLS, with a CA and certificates made at test time: each
    /// certificate problem the diagnosis names, through `login`, the agent and `doctor`; and a
    /// profile's own `ca_file` honoured by login and by the agent, which builds its clients again
    /// on SIGHUP.
    @Suite struct TLSTests {
        static let wrongHost = "is not valid for that name (wrong host)"
        static let untrusted = "could not be verified: it is issued by an unknown CA, or it has expired or is not yet valid"

        @Test(arguments: [
            (TestPKI.Server.wrongHost, TLSTests.wrongHost, "use the tenant's own host name"),
            (TestPKI.Server.unknownCA, TLSTests.untrusted, "`ca_file` in the config"),
            (TestPKI.Server.expired, TLSTests.untrusted, "check the system clock"),
        ])
        func aCertificateProblemIsDiagnosedByLoginTheAgentAndDoctor(
            server: TestPKI.Server, diagnosis: String, fix: String
        ) async throws {
            let session = try LoggedInSession()
            let pki = try await TestPKI.make(in: session.sandbox.root)
            try session.setCAFile(pki.caFile)
            let state = StandInState()
            await state.addClient(id: session.clientID, secret: session.secret)
            defer { RunningAgents.kill(mentioning: session.sandbox.root) }
            try await withStandIn(state, tls: pki.standIn(server)) { url in
                let login = try await session.attemptLogin(url)
                #expect(login.status == 6, "\(login)")
                #expect(login.stderr.contains("TLS: the certificate presented by localhost \(diagnosis)"), "\(login)")
                #expect(login.stderr.contains(fix), "\(login)")

                // Stored without a request, so the agent and doctor meet the certificate too.
                try await session.login(url, extra: ["--no-verify"])
                try await session.startAgent()
                let token = try await session.run(["token"])
                #expect(token.status == 6, "\(token)")
                #expect(token.stderr.contains(diagnosis), "the agent's diagnosis: \(token)")

                let doctor = try await session.run(["doctor"])
                #expect(doctor.status == 6, "\(doctor)")
                let tenant = DoctorCLITests.lines(doctor.stdout)["tenant"]
                #expect(tenant?.mark == "✗", "\(doctor)")
                #expect(tenant?.text.contains(diagnosis) == true, "\(doctor)")
                #expect(doctor.stdout.contains(fix), "the hint names the fix: \(doctor)")

                #expect(await state.tokenRequestCount == 0, "no request got through the handshake")
                try session.sandbox.assertNoLeaks([login, token, doctor])
            }
            try await session.finish()
        }

        @Test func aProfilesOwnCAFileWorksForLoginAndTheAgentWhichRebuildsItsClientsOnSIGHUP() async throws {
            let parent = (ProcessInfo.processInfo.environment["RC_SANDBOX"] ?? NSTemporaryDirectory())
                + "/tls-" + String(UUID().uuidString.prefix(8)).lowercased()
            defer { try? FileManager.default.removeItem(atPath: parent) }
            let pki = try await TestPKI.make(in: parent)
            // The login inside `run` verifies over TLS with the profile's ca_file ([defaults] has none).
            try await AgentWorld.run(tls: (pki.standIn(.valid), pki.caFile)) { world in
                #expect(world.url.hasPrefix("https://localhost:"), "\(world.url)")
                let config = try String(contentsOfFile: world.sandbox.configPath, encoding: .utf8)
                #expect(!config.contains("[defaults]"), "\(config)")
                #expect(config.contains("ca_file = \"\(pki.caFile)\""), "\(config)")

                // Another CA in the profile when the agent starts: it does not trust the stand-in.
                try world.session.setCAFile(pki.otherCAFile)
                let daemon = try await world.daemon()
                let refused = try await world.token()
                #expect(refused.status == 502, "\(refused.body)\n\(daemon.log)")
                #expect(refused.body.contains(Self.untrusted), "\(refused.body)")

                // The right CA in the profile and SIGHUP: the agent builds its clients again and fetches.
                try world.session.setCAFile(pki.caFile)
                daemon.send(SIGHUP)
                var served = try await world.token()
                for _ in 0..<300 where served.status != 200 {
                    try await Task.sleep(nanoseconds: 100_000_000)
                    served = try await world.token()
                }
                #expect(served.status == 200, "the agent uses the profile's ca_file after SIGHUP: \(served.body)\n\(daemon.log)")
                let cli = try await world.tokenCLI()
                #expect(cli.status == 0, "\(cli)")
            }
        }
    }
}
