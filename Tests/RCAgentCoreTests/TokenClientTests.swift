import AsyncHTTPClient
import Foundation
@testable import RCAgentClient
import RCAgentCore
@testable import RCAgentDaemon
@testable import RCAgentLive
import RCAgentTestSupport
import RiskCloudStandIn
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// A clock that stands still: expiry arithmetic is checked exactly, nothing sleeps.
private struct FixedClock: AgentClock {
    let date: Date
    func now() -> Date { date }
    func sleep(seconds: Double) async throws {}
}

private let clientID = "rc-test-client"
private let secret = "s3cret-Example-Value-42"
private let basicValue = BasicAuth.encode("\(clientID):\(secret)")
private let start = Date(timeIntervalSince1970: 1_800_000_000)

/// Runs `body` against a fresh stand-in with one known client and a client on a fixed clock.
private func withTenant<T>(
    settings: HTTPSettings = HTTPSettings(connectTimeout: 5, readTimeout: 10, requestTimeout: 20, environment: [:]),
    _ body: (StandInState, TenantURL, RiskCloudClient) async throws -> T
) async throws -> T {
    let state = StandInState()
    await state.addClient(id: clientID, secret: secret)
    return try await withStandIn(state) { base in
        try await RiskCloudClient.withClient(settings: settings, clock: FixedClock(date: start)) { client in
            try await body(state, try TenantURL(parsing: base), client)
        }
    }
}

/// The token fetch must fail with a RiskCloudError; returns it.
private func fetchError(_ client: RiskCloudClient, _ tenant: TenantURL, secret: String = secret) async -> RiskCloudError? {
    do {
        let token = try await client.fetchToken(tenant: tenant, clientID: clientID, secret: Secret(secret))
        Issue.record("expected a failure, got a token expiring \(token.expiresAt)")
        return nil
    } catch let error as RiskCloudError {
        expectNoLeak(error)
        return error
    } catch {
        Issue.record("expected RiskCloudError, got \(type(of: error)): \(error)")
        return nil
    }
}

/// No message, hint or description carries the secret, the Basic value or a token.
private func expectNoLeak(_ error: RiskCloudError, tokens: [String] = [], sourceLocation: SourceLocation = #_sourceLocation) {
    let texts = [error.description, error.message, error.hint ?? "", String(reflecting: error)]
    for text in texts {
        for forbidden in [secret, basicValue, "Basic " + basicValue] + tokens {
            #expect(!text.contains(forbidden), "leaked a credential in: \(text)", sourceLocation: sourceLocation)
        }
    }
}

@Suite struct TokenClientTests {
    @Test func successComputesExpiryFromSendTime() async throws {
        try await withTenant { state, tenant, client in
            await state.setTokenLifetime(seconds: 3600)
            let token = try await client.fetchToken(tenant: tenant, clientID: clientID, secret: Secret(secret))
            #expect(token.tokenType == "bearer")
            #expect(token.scope == "read write")
            #expect(token.obtainedAt == start)
            #expect(token.expiresAt == start.addingTimeInterval(3600))
            #expect(!token.value.reveal().isEmpty)
            #expect(!"\(token)".contains(token.value.reveal()))
            // The header went out as the joined string, encoded once.
            #expect(await state.lastAuthorizationHeaders() == ["Basic " + basicValue])
            #expect(await state.tokenRequestCount == 1)

            // The stand-in reuses the live token (v1 behaviour); with reuse off it mints a new one.
            let again = try await client.fetchToken(tenant: tenant, clientID: clientID, secret: Secret(secret))
            #expect(again.value == token.value)
            await state.setReuseLiveToken(false)
            let fresh = try await client.fetchToken(tenant: tenant, clientID: clientID, secret: Secret(secret))
            #expect(fresh.value != token.value)
            #expect(await state.mintedTokenCount == 2)

            let records = try await client.get(tenant: tenant, path: "/api/v2/records?page=0&size=1", token: fresh.value)
            #expect(records.status == 200)
            let page = try JSONSerialization.jsonObject(with: Data(records.body)) as? [String: Any]
            #expect((page?["content"] as? [Any])?.count == 1)
            #expect(await state.apiRequestCount == 1)
        }
    }

    @Test func clientIDWithColonIsRejectedBeforeSending() async throws {
        try await withTenant { state, tenant, client in
            await #expect(throws: UsageError.self) {
                _ = try await client.fetchToken(tenant: tenant, clientID: "a:b", secret: Secret(secret))
            }
            #expect(await state.tokenRequestCount == 0)
        }
    }

    @Test func wrongSecretIsCredentialsRejected() async throws {
        try await withTenant { _, tenant, client in
            let error = try #require(await fetchError(client, tenant, secret: "wrong-" + secret))
            #expect(error.kind == .credentialsRejected)
            #expect(error.code.name == "credentials_rejected")
            #expect(error.exitStatus == .credentialsRejected)
            #expect(error.upstreamStatus == 401)
            #expect(!error.isRetryable)
            #expect(error.message.contains("401 Unauthorized"))
            #expect(error.hint?.contains("Profile → Access Key → Reset Secret Key") == true)
            #expect(error.hint?.contains("rc-agent login") == true)
        }
    }

    @Test func resetSecretRejectsOldSecretAndRevokesTokens() async throws {
        try await withTenant { state, tenant, client in
            let token = try await client.fetchToken(tenant: tenant, clientID: clientID, secret: Secret(secret))
            await state.resetSecret(clientID: clientID, newSecret: "n3w-" + secret)
            let error = try #require(await fetchError(client, tenant))
            #expect(error.kind == .credentialsRejected)

            let answer = try await client.get(tenant: tenant, path: "/api/v2/records", token: token.value)
            let diagnosis = try #require(
                RiskCloudError.forResponse(
                    status: answer.status, headers: answer.headers, body: answer.body, tenant: tenant,
                    path: "/api/v2/records", endpoint: .api, now: start))
            #expect(diagnosis.kind == .tokenRejected)
            #expect(diagnosis.isRetryable)
            expectNoLeak(diagnosis, tokens: [token.value.reveal()])

            // The same 401 after a token fetched for the retry: replaced elsewhere, or a permission problem.
            let fresh = try #require(
                RiskCloudError.forResponse(
                    status: answer.status, headers: answer.headers, body: answer.body, tenant: tenant,
                    path: "/api/v2/records", endpoint: .api, now: start, freshToken: true))
            #expect(fresh.kind == .freshTokenRejected)
            #expect(fresh.code == diagnosis.code && fresh.exitStatus == diagnosis.exitStatus)
            #expect(!fresh.isRetryable)
            #expect(fresh.message.contains("generated elsewhere for the same Client ID"))
            #expect(fresh.message.contains("401, as 403 or as an empty list"))
            #expect(fresh.hint?.contains("its own service account") == true)
        }
    }

    /// Headers a broken integration sends: each is a 401 at the token endpoint.
    @Test(arguments: [
        "Basic " + BasicAuth.encode(clientID) + ":" + BasicAuth.encode(secret),  // parts encoded separately
        "Bearer " + basicValue,  // wrong header type
        "Basic " + BasicAuth.encode("\(clientID):\(secret)\n"),  // trailing newline in the secret
        "",  // no credentials
    ])
    func malformedAuthorizationIsRejected(_ header: String) async throws {
        try await withTenant { state, tenant, _ in
            let response = try await HTTPClient.withHTTPClient { http in
                var request = HTTPClientRequest(url: tenant.url(path: "/api/v1/account/token"))
                request.method = .POST
                if !header.isEmpty { request.headers.add(name: "Authorization", value: header) }
                let response = try await http.execute(request, timeout: .seconds(10))
                return (Int(response.status.code), try await response.body.collect(upTo: 1024).readableBytes)
            }
            #expect(response.0 == 401)
            #expect(response.1 == 0, "the spec defines no 401 body")
            let diagnosis = RiskCloudError.forResponse(
                status: response.0, headers: [], body: [], tenant: tenant, path: "/api/v1/account/token",
                endpoint: .token, now: start)
            #expect(diagnosis?.kind == .credentialsRejected)
            #expect(await state.tokenRequestCount == 1)
        }
    }

    @Test func badRequestCarriesTheTenantsMessage() async throws {
        try await withTenant { state, tenant, client in
            await state.inject(
                .status(400, body: #"{"property":"body","value":null,"message":"Malformed JSON request"}"#), times: 1)
            let error = try #require(await fetchError(client, tenant))
            #expect(error.kind == .badRequest(message: "Malformed JSON request"))
            #expect(error.code.name == "bad_request")
            #expect(error.exitStatus == .failure)
            #expect(error.message.contains("400 Bad Request") && error.message.contains("Malformed JSON request"))

            // The natural 400: bad paging parameters on a v2 endpoint.
            let token = try await client.fetchToken(tenant: tenant, clientID: clientID, secret: Secret(secret))
            let answer = try await client.get(tenant: tenant, path: "/api/v2/records?page=0&size=0", token: token.value)
            let diagnosis = RiskCloudError.forResponse(
                status: answer.status, headers: answer.headers, body: answer.body, tenant: tenant,
                path: "/api/v2/records", endpoint: .api, now: start)
            guard case .badRequest(let message)? = diagnosis?.kind else {
                Issue.record("expected bad_request, got \(String(describing: diagnosis))")
                return
            }
            #expect(message?.contains("size") == true)
        }
    }

    @Test func restrictedClientIsForbiddenOnApplications() async throws {
        try await withTenant { state, tenant, client in
            await state.addClient(id: clientID, secret: secret, restricted: true)
            let token = try await client.fetchToken(tenant: tenant, clientID: clientID, secret: Secret(secret))
            let records = try await client.get(tenant: tenant, path: "/api/v2/records?page=0&size=1", token: token.value)
            #expect(records.status == 200)
            let apps = try await client.get(tenant: tenant, path: "/api/v2/applications?page=0&size=1", token: token.value)
            let error = try #require(
                RiskCloudError.forResponse(
                    status: apps.status, headers: apps.headers, body: apps.body, tenant: tenant,
                    path: "/api/v2/applications", endpoint: .api, now: start))
            #expect(error.kind == .forbidden(message: "Access is denied"))
            #expect(error.code.name == "forbidden" && error.upstreamStatus == 403 && !error.isRetryable)
            #expect(error.hint?.contains("roles") == true)
            #expect(error.hint?.contains("UI as that user") == true)
            expectNoLeak(error, tokens: [token.value.reveal()])

            await state.inject(.status(403, body: nil), times: 1)
            #expect(await fetchError(client, tenant)?.kind == .forbidden(message: nil))
        }
    }

    @Test func wrongPathOrBaseIsNotFound() async throws {
        try await withTenant { state, tenant, client in
            let token = try await client.fetchToken(tenant: tenant, clientID: clientID, secret: Secret(secret))
            let answer = try await client.get(tenant: tenant, path: "/api/v2/recordz", token: token.value)
            #expect(answer.status == 404)
            let body = try JSONSerialization.jsonObject(with: Data(answer.body)) as? [String: Any]
            #expect(body?["status"] as? Int == 404)
            let error = RiskCloudError.forResponse(
                status: answer.status, headers: answer.headers, body: answer.body, tenant: tenant,
                path: "/api/v2/recordz", endpoint: .api, now: start)
            #expect(error?.kind == .notFound && error?.code.name == "not_found")

            // A base URL that is not the tenant's answers 404 at the token endpoint.
            await state.inject(.status(404, body: #"{"status":404,"message":"Not Found"}"#), times: 1)
            let tokenError = try #require(await fetchError(client, tenant))
            #expect(tokenError.kind == .notFound)
            #expect(tokenError.hint?.contains("tenant URL") == true)
        }
    }

    @Test func serverErrorIsUnreachableAndRetryable() async throws {
        try await withTenant { state, tenant, client in
            await state.inject(.status(503, body: "<html><body>Service Unavailable</body></html>"), times: 1)
            let error = try #require(await fetchError(client, tenant))
            #expect(error.kind == .serverError(status: 503, excerpt: "Service Unavailable"))
            #expect(error.code.name == "tenant_unreachable" && error.exitStatus == .tenantUnreachable)
            #expect(error.isRetryable && error.upstreamStatus == 503)
            // The failure was injected once: the next request succeeds.
            _ = try await client.fetchToken(tenant: tenant, clientID: clientID, secret: Secret(secret))
        }
    }

    @Test func rateLimitExposesRetryAfter() async throws {
        try await withTenant { state, tenant, client in
            await state.inject(.retryAfter(seconds: 7), times: 1)
            let error = try #require(await fetchError(client, tenant))
            #expect(error.kind == .rateLimited(retryAfter: 7))
            #expect(error.retryAfter == 7 && error.retryAfterSeconds == 7)
            #expect(error.code.name == "rate_limited" && error.isRetryable && error.exitStatus == .failure)
        }
    }

    @Test func garbageBodyIsUnexpectedResponse() async throws {
        try await withTenant { state, tenant, client in
            await state.inject(.garbage, times: 1)
            let error = try #require(await fetchError(client, tenant))
            guard case .unexpectedResponse(let status, let excerpt) = error.kind else {
                Issue.record("expected unexpected_response, got \(error.kind)")
                return
            }
            #expect(status == 200)
            #expect(excerpt.contains("Maintenance"))
            #expect(!excerpt.contains("<"))
            #expect(excerpt.count <= ResponseExcerpt.limit + 30)
            #expect(error.code.name == "unexpected_response" && error.exitStatus == .failure)
        }
    }

    /// A server that speaks only TLS 1.1 (`openssl s_server -tls1_1`, a certificate made here and
    /// trusted through `ca_file`): it completes a TLS 1.1 handshake with a client that allows it,
    /// and rc-agent's client refuses it in the handshake.
    @Test func tlsBelowVersion12IsRefused() async throws {
        let dir = FileManager.default.temporaryDirectory.appendingPathComponent("tls11-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(atPath: dir) }
        let made = try await runProcess(
            "/usr/bin/openssl",
            ["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-keyout", dir + "/key.pem", "-out", dir + "/cert.pem",
             "-days", "1", "-subj", "/CN=127.0.0.1", "-addext", "subjectAltName=IP:127.0.0.1"],
            environment: ProcessInfo.processInfo.environment)
        try #require(made.status == 0, "\(made)")
        let port = try freeLoopbackPort()
        let server = try await ChildProcess([
            "/usr/bin/openssl", "s_server", "-accept", "127.0.0.1:\(port)", "-tls1_1", "-cipher", "DEFAULT:@SECLEVEL=0",
            "-cert", dir + "/cert.pem", "-key", dir + "/key.pem", "-www",
        ])
        defer { server.kill() }
        let listening = try await server.waitUntil { canConnect(port: port) }
        try #require(listening, "openssl s_server did not listen on \(port)")

        let allowed = try await runProcess(
            "/usr/bin/openssl",
            ["s_client", "-connect", "127.0.0.1:\(port)", "-tls1_1", "-cipher", "DEFAULT:@SECLEVEL=0",
             "-CAfile", dir + "/cert.pem"],
            stdin: "", environment: ProcessInfo.processInfo.environment)
        #expect(allowed.stdout.contains("Protocol  : TLSv1.1"), "the server speaks TLS 1.1: \(allowed)")

        let settings = HTTPSettings(connectTimeout: 5, readTimeout: 10, requestTimeout: 20, caFile: dir + "/cert.pem", environment: [:])
        try await RiskCloudClient.withClient(settings: settings, clock: FixedClock(date: start)) { client in
            let error = try #require(await fetchError(client, try TenantURL(parsing: "https://127.0.0.1:\(port)")))
            guard case .tls(.handshake, let detail) = error.kind else {
                Issue.record("expected a TLS handshake failure, got \(error.kind)")
                return
            }
            #expect(detail.contains("UNSUPPORTED_PROTOCOL") || detail.contains("PROTOCOL_VERSION"), "\(detail)")
        }
    }

    @Test func slowTenantTimesOut() async throws {
        let settings = HTTPSettings(connectTimeout: 5, readTimeout: 0.3, requestTimeout: 20, environment: [:])
        try await withTenant(settings: settings) { state, tenant, client in
            await state.inject(.delay(seconds: 60), times: 1)
            let error = try #require(await fetchError(client, tenant))
            #expect(error.kind == .timeout(phase: .read, seconds: 0.3))
            #expect(error.code.name == "tenant_timeout" && error.exitStatus == .tenantUnreachable && error.isRetryable)
        }
    }

    @Test func closedConnectionIsUnreachable() async throws {
        try await withTenant { state, tenant, client in
            await state.inject(.closeConnection, times: 1)
            let error = try #require(await fetchError(client, tenant))
            #expect(error.kind == .connectionClosed)
            #expect(error.code.name == "tenant_unreachable" && error.isRetryable)
        }
    }

    @Test func closedPortIsConnectionRefused() async throws {
        let base = try await withStandIn(StandInState()) { $0 }  // the port is free again afterwards
        let tenant = try TenantURL(parsing: base)
        try await RiskCloudClient.withClient(settings: HTTPSettings(environment: [:]), clock: FixedClock(date: start)) {
            client in
            let error = try #require(await fetchError(client, tenant))
            #expect(error.kind == .connectionRefused(host: "127.0.0.1", port: tenant.port ?? 0))
            #expect(error.code.name == "tenant_unreachable" && error.exitStatus == .tenantUnreachable)
        }
    }

    @Test func excerptsAndMessagesNeverCarrySecrets() async throws {
        try await withTenant { state, tenant, client in
            let token = try await client.fetchToken(tenant: tenant, clientID: clientID, secret: Secret(secret))
            let t = token.value.reveal()
            // A tenant (or proxy) that echoes what it got must not get it into our messages.
            await state.inject(
                .status(500, body: "debug: Authorization: Basic \(basicValue) secret=\(secret) token \(t)"), times: 1)
            expectNoLeak(try #require(await fetchError(client, tenant)), tokens: [t])
            await state.inject(
                .status(400, body: #"{"message":"bad client_secret \#(secret) for \#(basicValue)"}"#), times: 1)
            expectNoLeak(try #require(await fetchError(client, tenant)), tokens: [t])
            await state.inject(.status(200, body: #"{"access_token":"\#(t)","expires_in":"soon"}"#), times: 1)
            let odd = try #require(await fetchError(client, tenant))
            #expect(odd.code.name == "unexpected_response")
            expectNoLeak(odd, tokens: [t])
            await state.inject(.status(302, body: nil), times: 1)
            #expect(await fetchError(client, tenant)?.code.name == "unexpected_response")
        }
    }

    @Test func proxySettingsFromEnvironment() throws {
        #expect(try ProxySettings.from(environment: [:]) == nil)
        let proxy = try #require(
            try ProxySettings.from(environment: [
                "HTTPS_PROXY": "http://proxy.corp:3128", "NO_PROXY": "localhost,.internal.corp, logicgate.com:443",
            ]))
        #expect(proxy.host == "proxy.corp" && proxy.port == 3128 && !proxy.isSOCKS)
        #expect(proxy.bypasses(host: "127.0.0.1"))
        #expect(proxy.bypasses(host: "a.internal.corp"))
        #expect(proxy.bypasses(host: "acme.logicgate.com"))
        #expect(!proxy.bypasses(host: "acme.logicgate.io"))
        #expect(!proxy.bypasses(host: "notlogicgate.com"))
        #expect(throws: RiskCloudError.self) { try ProxySettings.from(environment: ["https_proxy": "ftp://x:1"]) }
    }

    @Test func unreadableCABundleIsABadSetting() {
        let error = #expect(throws: RiskCloudError.self) {
            _ = try RiskCloudClient(settings: HTTPSettings(caFile: "/nonexistent/ca.pem", environment: [:]))
        }
        #expect(error?.code.name == "bad_config")
    }
}

/// A TCP port on 127.0.0.1 that nothing listens on right now.
private func freeLoopbackPort() throws -> Int {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    defer { close(fd) }
    var address = sockaddr_in()
    address.sin_family = sa_family_t(AF_INET)
    address.sin_addr.s_addr = inet_addr("127.0.0.1")
    var length = socklen_t(MemoryLayout<sockaddr_in>.size)
    let bound = withUnsafeMutablePointer(to: &address) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, length) == 0 && getsockname(fd, $0, &length) == 0 }
    }
    guard bound else { throw SocketSetupError("no free port: \(String(cString: strerror(errno)))") }
    return Int(UInt16(bigEndian: address.sin_port))
}

/// True when something accepts TCP connections on 127.0.0.1:`port`.
private func canConnect(port: Int) -> Bool {
    let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
    defer { close(fd) }
    var address = sockaddr_in()
    address.sin_family = sa_family_t(AF_INET)
    address.sin_addr.s_addr = inet_addr("127.0.0.1")
    address.sin_port = in_port_t(UInt16(port).bigEndian)
    return withUnsafePointer(to: &address) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) == 0 }
    }
}
