import Foundation
import Testing

@testable import RCAgentClient
@testable import RCAgentCore
@testable import RCAgentDaemon
@testable import RCAgentLive
import RCAgentTestSupport
@testable import rc_agent

/// The locally detectable causes of a 401 at the token endpoint (doctor's auth check).
struct DoctorHeuristicsTests {
    let tenant = try! TenantURL(parsing: "https://acme.logicgate.com")

    func detect(id: String = "my-client-id", secret: String, tenant: TenantURL? = nil, stored: String? = nil)
        -> [RiskCloudError.CredentialMistake]
    {
        CredentialHeuristics.detect(
            clientID: id, secret: Secret(secret), tenant: tenant ?? self.tenant, storedURL: stored ?? self.tenant.base)
    }

    @Test func wellFormedCredentialsShowNothing() {
        #expect(detect(secret: "q8F3kLm2Zx9Pw4Rt7Yv1Bn6Hc5Jd0Ks2").isEmpty)
        #expect(detect(secret: "s3cr3t-1F0E6C1B-5A7D-4C8E-9B2A-0D3F4E5A6B7C").isEmpty)
        #expect(detect(secret: "ÄÖÜ-unicode-secret").isEmpty)
    }

    @Test(arguments: ["secret ", " secret", "sec ret", "secret\n", "secret\r\n", "sec\tret", "secret\u{00A0}"])
    func whitespaceAnywhereInTheSecret(_ secret: String) {
        #expect(detect(secret: secret) == [.whitespaceInSecret])
    }

    @Test func whitespaceInTheClientID() {
        #expect(detect(id: "my-client-id\n", secret: "q8F3kLm2Zx9Pw4Rt7Yv1Bn6Hc5Jd0Ks2") == [.whitespaceInClientID])
    }

    @Test func clientIDEqualToTheSecret() {
        #expect(detect(id: "abcDEF123456", secret: "abcDEF123456") == [.clientIDEqualsSecret])
    }

    @Test func aPastedAuthorizationHeader() {
        #expect(detect(secret: "Basic bXktY2xpZW50LWlkOnNlY3JldA==") == [.authSchemeInSecret(scheme: "Basic")])
        #expect(detect(secret: "bearer abc.def") == [.authSchemeInSecret(scheme: "Bearer")])
    }

    @Test func base64OfIDAndSecretIsAlreadyEncoded() {
        let encoded = BasicAuth.encode("my-client-id:the-secret")
        #expect(detect(secret: encoded) == [.secretAlreadyEncoded(joined: true)])
    }

    @Test func base64OfPrintableTextIsAlreadyEncoded() {
        #expect(detect(secret: BasicAuth.encode("the-real-secret-value")) == [.secretAlreadyEncoded(joined: false)])
        #expect(detect(secret: BasicAuth.encode("ünïcödé sécret")) == [.secretAlreadyEncoded(joined: false)])
    }

    @Test func base64LookalikesThatDoNotDecodeToTextAreNotFlagged() {
        // Valid base64 alphabet and length, but decodes to binary.
        #expect(CredentialHeuristics.alreadyEncoded("q8F3kLm2Zx9Pw4Rt7Yv1Bn6Hc5Jd0Ks2") == nil)
        // Decodes, but not canonically (the re-encoding differs): not flagged.
        #expect(CredentialHeuristics.alreadyEncoded("YWJjZGVmZ2i=") == nil)
        // Too short to tell.
        #expect(CredentialHeuristics.alreadyEncoded("YWJj") == nil)
        #expect(CredentialHeuristics.alreadyEncoded(BasicAuth.encode("\u{01}\u{02}\u{03}\u{04}binary")) == nil)
    }

    @Test(arguments: [
        ("https://acme.logicgate.com", true), ("http://127.0.0.1:8080", true), ("http://localhost:1", true),
        ("https://logicgate.com", false), ("https://www.logicgate.com", false), ("https://help.logicgate.com", false),
        ("https://acme.example.com", false), ("https://10.0.0.1", false), ("https://a.b.logicgate.com", false),
    ])
    func tenantHosts(_ url: String, _ isTenant: Bool) throws {
        let tenant = try TenantURL(parsing: url)
        let found = detect(secret: "q8F3kLm2Zx9Pw4Rt7Yv1Bn6Hc5Jd0Ks2", tenant: tenant, stored: url)
        #expect(found == (isTenant ? [] : [.notTenantHost(host: tenant.host)]))
    }

    @Test func aURLOtherThanTheStoredOne() throws {
        let other = try TenantURL(parsing: "https://other.logicgate.com")
        #expect(detect(secret: "q8F3kLm2Zx9Pw4Rt7Yv1Bn6Hc5Jd0Ks2", tenant: other) == [
            .urlDiffersFromStored(url: "https://other.logicgate.com", stored: "https://acme.logicgate.com")
        ])
        // Same tenant spelled differently is the same tenant.
        #expect(detect(secret: "q8F3kLm2Zx9Pw4Rt7Yv1Bn6Hc5Jd0Ks2", stored: "acme.logicgate.com/api").isEmpty)
    }

    @Test func severalMistakesAreAllNamedWithTheirFixesOnce() {
        let found = detect(id: "same value", secret: "same value")
        #expect(found == [.whitespaceInSecret, .whitespaceInClientID, .clientIDEqualsSecret])
        let error = RiskCloudError(.credentialsRejected, tenant: tenant.base, path: "/api/v1/account/token")
        let explained = error.explained(by: found, profile: "default")
        #expect(explained.message.hasPrefix(error.message))
        for mistake in found { #expect(explained.message.contains(mistake.message)) }
        #expect(explained.hint?.components(separatedBy: "Profile → Access Key").count == 2, "one hint, not three")
    }

    @Test func withoutADetectedMistakeTheFixIsResetAndRotate() {
        let error = RiskCloudError(.credentialsRejected, tenant: tenant.base, path: "/api/v1/account/token")
        let explained = error.explained(by: [], profile: "work")
        #expect(explained.message == error.message)
        #expect(explained.hint?.contains("Reset Secret Key") == true)
        #expect(explained.hint?.contains("rc-agent rotate --profile work") == true)
        // Other errors keep the diagnosis module's own texts.
        let notFound = RiskCloudError(.notFound, tenant: tenant.base, path: "/api/v2/records")
        #expect(notFound.explained(by: [.clientIDEqualsSecret], profile: "work").hint == notFound.hint)
    }

    @Test func reportJSONHasTheDocumentedShapeAndExitCodeOfTheFirstFailure() throws {
        let report = DoctorReport(checks: [
            DoctorCheckResult(id: "config", status: .ok, message: "fine", hint: nil, elapsedMS: 1),
            DoctorCheckResult(id: "credentials", status: .fail, message: "locked", hint: "unlock", elapsedMS: 2,
                exitStatus: .keyringUnavailable),
            DoctorCheckResult(id: "tenant", status: .fail, message: "down", hint: nil, elapsedMS: 3,
                exitStatus: .tenantUnreachable),
            DoctorCheckResult(id: "agent", status: .warn, message: "not running", hint: "start", elapsedMS: 0),
        ])
        #expect(report.exitStatus == .keyringUnavailable)
        #expect(!report.ok)
        let json = try #require(JSONSerialization.jsonObject(with: Data(DoctorView.json(report).utf8)) as? [String: Any])
        #expect(Set(json.keys) == ["checks", "ok"])
        let first = try #require((json["checks"] as? [[String: Any]])?.first)
        #expect(Set(first.keys) == ["id", "status", "message", "hint", "elapsed_ms"])
        #expect(first["hint"] is NSNull)
        let lines = DoctorView.text(report).split(separator: "\n").map(String.init)
        #expect(lines.first?.hasPrefix("✓ config") == true)
        #expect(lines.contains { $0.hasPrefix("✗ credentials") })
        #expect(lines.contains { $0.hasPrefix("! agent") })
    }
}
