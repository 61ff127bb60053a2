@testable import RCAgentClient
import RCAgentCore
@testable import RCAgentDaemon
@testable import RCAgentLive
import RCAgentTestSupport
import Testing

@Suite struct TenantURLTests {
    @Test(arguments: [
        ("acme.logicgate.com", "https://acme.logicgate.com"),
        ("https://acme.logicgate.com", "https://acme.logicgate.com"),
        ("https://acme.logicgate.com/", "https://acme.logicgate.com"),
        ("  https://ACME.LogicGate.com/  \n", "https://acme.logicgate.com"),
        ("https://acme.logicgate.com/api/v2/records?page=0", "https://acme.logicgate.com"),
        ("acme.logicgate.com/api/v1/account/token", "https://acme.logicgate.com"),
        ("https://acme.logicgate.com:443/", "https://acme.logicgate.com"),
        ("https://acme.logicgate.com:8443", "https://acme.logicgate.com:8443"),
        ("http://127.0.0.1:8080", "http://127.0.0.1:8080"),
        ("http://127.5.6.7", "http://127.5.6.7"),
        ("http://localhost:9000/api", "http://localhost:9000"),
        ("http://[::1]:9000", "http://[::1]:9000"),
        ("http://127.0.0.1:80/", "http://127.0.0.1"),
    ])
    func normalises(_ input: String, _ expected: String) throws {
        let url = try TenantURL(parsing: input)
        #expect(url.base == expected)
        #expect(url.url(path: "/api/v1/account/token") == expected + "/api/v1/account/token")
    }

    @Test func partsAreExposed() throws {
        let url = try TenantURL(parsing: "http://[::1]:9000")
        #expect(url.scheme == "http" && url.host == "::1" && url.port == 9000)
        let tenant = try TenantURL(parsing: "acme.logicgate.com")
        #expect(tenant.scheme == "https" && tenant.host == "acme.logicgate.com" && tenant.port == nil)
    }

    @Test(arguments: [
        "http://acme.logicgate.com", "http://10.0.0.1", "http://128.0.0.1", "http://localhost.evil.com",
        "http://127.0.0.1.nip.io",
    ])
    func plainHTTPIsRefusedForNonLoopbackHosts(_ input: String) {
        let error = #expect(throws: TenantURLError.self) { try TenantURL(parsing: input) }
        #expect(error?.reason.contains("loopback") == true)
        #expect(error?.exitStatus == .usage)
    }

    @Test(arguments: [
        "", "   ", "ftp://acme.logicgate.com", "https://user:pw@acme.logicgate.com",
        "https://acme.logicgate.com/login", "https://",
    ])
    func rejectsOtherMistakes(_ input: String) {
        #expect(throws: TenantURLError.self) { try TenantURL(parsing: input) }
    }

    @Test func loopbackDetection() {
        for host in ["127.0.0.1", "127.255.255.254", "localhost", "LOCALHOST", "::1", "[::1]"] {
            #expect(TenantURL.isLoopback(host), "\(host)")
        }
        for host in ["128.0.0.1", "127.0.0", "127.0.0.1.5", "127.0.0.256", "::2", "example.com", "localhost."] {
            #expect(!TenantURL.isLoopback(host), "\(host)")
        }
    }
}
