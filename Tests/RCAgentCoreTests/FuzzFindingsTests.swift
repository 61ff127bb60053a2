import Foundation
import Testing

@testable import RCAgentCore

/// Inputs `make fuzz` found that crashed or misled a parser (docs/RELIABILITY.md, "Fuzzing"); each
/// is also in the target's seed corpus under fuzz/corpus.
@Suite struct FuzzFindingsTests {
    /// `[]` and `[%]` were hosts to URLComponents: a tenant URL with no host (or `%`) was accepted,
    /// and its base (`https://`) did not parse back.
    @Test(arguments: [
        "[]", "[%]", "https://[]:8080", "http://[%]/api", "xn--btt%33333333333333333333333333333333333333333333333333333333333333333333",
        "acme%2elogicgate.com", String(repeating: "a", count: 64) + ".logicgate.com", "[6666666666666666666666]",
    ])
    func aURLWithoutARealHostIsRefused(_ input: String) {
        #expect(throws: TenantURLError.self) { try TenantURL(parsing: input) }
    }

    @Test func bracketedAddressesAndNamesStillParse() throws {
        #expect(try TenantURL(parsing: "http://[::1]:9").base == "http://[::1]:9")
        #expect(try TenantURL(parsing: "ACME.logicgate.com").base == "https://acme.logicgate.com")
    }

    /// A lone carriage return in a table header made toml++ abort the process (an assertion in its
    /// key parser): rc-agent refuses control characters before the parser runs.
    @Test func aLoneCarriageReturnIsAConfigErrorNotAnAbort() throws {
        let error = #expect(throws: ConfigError.self) { try ConfigFile.parse("[\rrspf[i\n", path: "c.toml") }
        #expect(error?.line == 1)
        #expect(error?.reason.contains("U+000D") == true, "\(String(describing: error))")
        let crlf = try ConfigFile.parse("[profiles.default]\r\nurl = \"https://a.logicgate.com\"\r\n", path: "c.toml")
        #expect(crlf.profiles["default"]?.url == "https://a.logicgate.com")
        #expect(throws: ConfigError.self) { try ConfigFile.parse("# bell \u{07}\n", path: "c.toml") }
    }

    /// A table header whose name does not start like a key made toml++ abort the same way.
    @Test(arguments: ["[\u{FFFD}\u{FFFD}e_days = 7\n", "[é]\nurl = \"x\"\n", "[[ ü ]]\n", "a = 1\n  [\u{FFFD}\n", "[[!f]\n",
                      "[{a=1}]\n", "[+1]\n", "[[\n", "[", "\u{FEFF}[\u{FFFD}", "[defaults]\nfile = \"work\"\n[   \u{FFFD}ng = 5\n", "s = \"]\"\n[+1]\n"])
    func aTableNameThatStartsWithNonASCIIIsAConfigErrorNotAnAbort(_ text: String) {
        #expect(throws: ConfigError.self) { try ConfigFile.parse(text, path: "c.toml") }
    }

    @Test func arraysAndQuotedNamesStillParse() throws {
        let config = try ConfigFile.parse(
            "[profiles.\"work\"]\nurl = \"https://a.logicgate.com\" # café [+\nextra = [\n  [1, 2],\n  [\"é\"],\n  [+1],\n  {a = [{b = 1}]},\n]\n"
                + "note = \"\"\"\n[+ not a header\n\"\"\"\n",
            path: "c.toml")
        #expect(config.profiles["work"]?.url == "https://a.logicgate.com")
    }

    /// `expires_in` of 15e23 seconds became an expiry no `Int` holds: the agent trapped when it
    /// computed `expires_in` for its answer.
    @Test(arguments: ["15e23", "1e300", "9223372036854775807", "3162240001"])
    func anExpiryBeyondAHundredYearsIsAnUnexpectedAnswer(_ expiresIn: String) throws {
        let body = Array(#"{"access_token":"abc","expires_in":\#(expiresIn)}"#.utf8)
        let error = #expect(throws: RiskCloudError.self) {
            try AccessToken(
                tokenAnswer: UpstreamResponse(status: 200, headers: [], body: body), sentAt: Date(),
                tenant: try TenantURL(parsing: "https://acme.logicgate.com"), path: "/api/v1/account/token", redacting: [])
        }
        #expect(error?.code == .unexpectedResponse, "\(String(describing: error))")
        let year = Array(#"{"access_token":"abc","expires_in":31535999}"#.utf8)
        let token = try AccessToken(
            tokenAnswer: UpstreamResponse(status: 200, headers: [], body: year), sentAt: Date(timeIntervalSince1970: 0),
            tenant: try TenantURL(parsing: "https://acme.logicgate.com"), path: "/api/v1/account/token", redacting: [])
        #expect(token.expiresAt == Date(timeIntervalSince1970: 31_535_999))
    }
}
