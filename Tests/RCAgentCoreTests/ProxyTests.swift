import Foundation
import Logging
import NIOPosix
import RiskCloudStandIn
import Synchronization
import Testing

@testable import RCAgentClient
@testable import RCAgentCore
@testable import RCAgentDaemon
@testable import RCAgentLive
import RCAgentTestSupport

/// `/v1/proxy/…`: the real agent server on a temporary socket, the real client and the stand-in,
/// driven with curl as a script would.
@Suite struct ProxyTests {
    static let recordsPath = "/v1/proxy/default/api/v2/records"

    // MARK: Forwarding

    @Test func getThroughTheProxyUsesTheAgentsTokenNotTheCallers() async throws {
        let audit = AuditLines()
        try await InProcessAgent.withAgent(audit: audit.logger) { agent, state, _ in
            let answer = try await proxyCurl(
                agent.socket, Self.recordsPath + "?page=0&size=2",
                headers: ["Authorization: Bearer caller-token-must-not-travel", "Connection: close"])
            #expect(answer.status == 200)
            #expect(answer.header("X-RC-Agent-Diagnosis") == nil)
            #expect(answer.header("Content-Type") == "application/json")
            let page = try JSONSerialization.jsonObject(with: Data(answer.body)) as? [String: Any]
            #expect((page?["content"] as? [Any])?.count == 2)

            let token = try #require(await state.mintedTokens.last)
            #expect(await state.lastAPIAuthorizationHeaders() == ["Bearer " + token])
            #expect(await state.tokenRequestCount == 1)

            let lines = audit.lines
            let line = try #require(lines.first { $0.contains("proxied") })
            for part in ["method=GET", "path=/api/v2/records", "profile=default", "status=200", "peer_pid=", "peer_uid=\(getuid())", "peer_exe=/"] {
                #expect(line.contains(part), "audit line lacks \(part): \(line)")
            }
            #expect(!lines.contains { $0.contains(token) || $0.contains("size=2") || $0.contains("caller-token") })
        }
    }

    @Test func aRevokedTokenIsRefreshedOnceAndTheRequestSentAgain() async throws {
        try await InProcessAgent.withAgent { agent, state, _ in
            #expect(try await proxyCurl(agent.socket, Self.recordsPath).status == 200)
            #expect(await state.tokenRequestCount == 1)
            await state.revokeAllTokens()

            let answer = try await proxyCurl(agent.socket, Self.recordsPath)
            #expect(answer.status == 200)
            #expect(answer.header("X-RC-Agent-Diagnosis") == nil)
            #expect(await state.tokenRequestCount == 2)
            #expect(await state.apiRequestCount == 3)
            let tokens = await state.mintedTokens
            #expect(tokens.count == 2)
            #expect(await state.lastAPIAuthorizationHeaders().suffix(2) == tokens.map { "Bearer " + $0 })
        }
    }

    @Test func aPostBodyIsForwarded() async throws {
        try await InProcessAgent.withAgent { agent, state, _ in
            let answer = try await proxyCurl(
                agent.socket, Self.recordsPath, method: "POST",
                headers: ["Content-Type: application/json"], data: #"{"name":"Vendor \u00e9 42","applicationId":"app1"}"#)
            #expect(answer.status == 201)
            let record = try JSONSerialization.jsonObject(with: Data(answer.body)) as? [String: Any]
            #expect(record?["name"] as? String == "Vendor é 42")
            #expect(record?["id"] as? String == "rec4")
            #expect(await state.recordCount == 4)
        }
    }

    @Test func aPostIsRetriedWithItsBodyAfterA401() async throws {
        try await InProcessAgent.withAgent { agent, state, _ in
            _ = try await agent.cache.token(profile: "default")
            await state.revokeAllTokens()
            let answer = try await proxyCurl(
                agent.socket, Self.recordsPath, method: "POST", headers: ["Content-Type: application/json"],
                data: #"{"name":"after refresh"}"#)
            #expect(answer.status == 201)
            #expect(String(decoding: answer.body, as: UTF8.self).contains("after refresh"))
            #expect(await state.tokenRequestCount == 2)
            #expect(await state.recordCount == 4)
        }
    }

    // MARK: Diagnosis

    /// Each guide case (401, 400, 403, 404) through the proxy: the tenant's status and body pass
    /// through, and the header carries the diagnosis module's code for that answer.
    @Test func guideCasesPassThroughWithTheDiagnosisModulesCode() async throws {
        try await InProcessAgent.withAgent { agent, state, _ in
            await state.addClient(id: InProcessAgent.clientID, secret: InProcessAgent.secret, restricted: true)
            let tenant = try TenantURL(parsing: "http://127.0.0.1:1")
            func expected(_ status: Int, _ body: [UInt8]) -> String? {
                RiskCloudError.forResponse(
                    status: status, headers: [], body: body, tenant: tenant, path: "/api/v2/x", endpoint: .api, now: Date()
                )?.code.name
            }

            let forbidden = try await proxyCurl(agent.socket, "/v1/proxy/default/api/v2/applications?page=0&size=1")
            #expect(forbidden.status == 403)
            #expect(forbidden.header("X-RC-Agent-Diagnosis") == "forbidden")
            #expect(forbidden.header("X-RC-Agent-Diagnosis") == expected(403, forbidden.body))
            #expect(String(decoding: forbidden.body, as: UTF8.self).contains("Access is denied"))

            let missing = try await proxyCurl(agent.socket, "/v1/proxy/default/api/v2/nothing")
            #expect(missing.status == 404)
            #expect(missing.header("X-RC-Agent-Diagnosis") == "not_found")
            #expect(missing.header("X-RC-Agent-Diagnosis") == expected(404, missing.body))

            let malformed = try await proxyCurl(agent.socket, Self.recordsPath + "?size=0")
            #expect(malformed.status == 400)
            #expect(malformed.header("X-RC-Agent-Diagnosis") == "bad_request")
            #expect(String(decoding: malformed.body, as: UTF8.self).contains("size must be"))

            // A 401 that survives the one refresh is the answer.
            let before = await state.tokenRequestCount
            await state.inject(.status(401, body: nil), times: 2, target: .api)
            let rejected = try await proxyCurl(agent.socket, Self.recordsPath)
            #expect(rejected.status == 401)
            #expect(rejected.header("X-RC-Agent-Diagnosis") == "token_rejected")
            #expect(rejected.header("X-RC-Agent-Diagnosis") == expected(401, []))
            #expect(await state.tokenRequestCount == before + 1)

            let unknown = try await proxyCurl(agent.socket, "/v1/proxy/nobody/api/v2/records")
            #expect(unknown.status == 404)
            #expect(unknown.header("X-RC-Agent-Diagnosis") == "unknown_profile")
            #expect(String(decoding: unknown.body, as: UTF8.self).contains(#""code":"unknown_profile""#))
        }
    }

    // MARK: Path safety

    static let escapes = [
        "/v1/proxy/default/api/../v1/account/token",
        "/v1/proxy/default/api/v2/%2e%2e/%2E%2E/v1/account/token",
        "/v1/proxy/default/api/v2/.%2e/x",
        "/v1/proxy/default/api%2f..%2fv1/account/token",
        "/v1/proxy/default/api/v2/records%2F..",
        "/v1/proxy/default/api/v2/%252e%252e/%252e%252e/v1/account/token",
        "/v1/proxy/default//evil.example/api/v2/records",
        "/v1/proxy/default/api//evil.example/x",
        "/v1/proxy/default/http://evil.example/api/v2/records",
        "/v1/proxy/default/v1/account/token",
        "/v1/proxy/default/api",
        "/v1/proxy/default",
        "/v1/proxy/../api/v2/records",
        "/v1/proxy/default@evil.example/api/v2/records",
        "/v1/proxy/default/api/v2/%5c..%5cx",
        "/v1/proxy/default/api/v2/records%00",
        "/v1/proxy/default/api/..;/v1/account/token",
        "/v1/proxy/default/api/v2/%2e%2e;/%2e%2e;/v1/account/token",
        "/v1/proxy/default/api/v2/..%3b/..%3B/v1/account/token",
        "/v1/proxy/default/api/v2/..%253b/x",
        "/v1/proxy/default/api/v2/records;jsessionid=1",
        // Found by `make fuzz`: six layers of encoding around a dot segment.
        "/v1/proxy/default/api/v2/%25252525252e%25252525252e/x",
    ]

    @Test(arguments: escapes) func escapesAreRefusedBeforeAnythingIsSent(target: String) async throws {
        try await InProcessAgent.withAgent { agent, state, _ in
            let answer = try await proxyCurl(agent.socket, target)
            #expect(answer.status == 400, "\(target)")
            #expect(answer.header("X-RC-Agent-Diagnosis") == "bad_request", "\(target)")
            #expect(await state.apiRequestCount == 0)
            #expect(await state.tokenRequestCount == 0)
        }
    }

    @Test func targetParsingKeepsTheCallersEncoding() throws {
        let target = try ProxyTarget(path: "/v1/proxy/work.eu/api/v2/records/a%20b/", query: "page=1&q=%2e%2e%2F")
        #expect(target.profile == "work.eu")
        #expect(target.path == "/api/v2/records/a%20b/")
        #expect(target.pathAndQuery == "/api/v2/records/a%20b/?page=1&q=%2e%2e%2F")
        #expect(throws: AgentError.self) { try ProxyTarget(path: "/v1/proxy/default/api/v2/records", query: "a=b#frag") }
        #expect(throws: AgentError.self) { try ProxyTarget(path: "/v1/proxy/default/api/v2/rec ords", query: nil) }
    }

    /// The stand-in sets a session cookie on API answers (checked directly); the proxy's answer has none.
    @Test func theTenantsSessionCookieIsNotPassedOn() async throws {
        try await InProcessAgent.withAgent { agent, state, _ in
            let served = try await agent.cache.token(profile: "default")
            // The token goes through a header file, never argv.
            let headerFile = FileManager.default.temporaryDirectory.appendingPathComponent("h-\(UUID().uuidString)").path
            try Data("Authorization: Bearer \(served.token.value.reveal())\n".utf8).write(to: URL(fileURLWithPath: headerFile))
            defer { try? FileManager.default.removeItem(atPath: headerFile) }
            let direct = try await runProcess(
                "/usr/bin/curl", ["-s", "-D", "-", "-o", "/dev/null", "-H", "@" + headerFile, served.tenant.base + "/api/v2/records"],
                environment: [:])
            #expect(direct.stdout.lowercased().contains("set-cookie: rcsession="), "\(direct.stdout)")

            let answer = try await proxyCurl(agent.socket, Self.recordsPath)
            #expect(answer.status == 200)
            #expect(answer.header("Content-Type") == "application/json")
            #expect(answer.header("Set-Cookie") == nil, "\(answer.headers)")
        }
    }

    @Test func hopByHopHeadersAndThoseConnectionNamesAreDropped() {
        let kept = ProxyRoutes.forwardable([
            (name: "Connection", value: "keep-alive, X-Private-Hop"), (name: "Keep-Alive", value: "timeout=5"),
            (name: "X-Private-Hop", value: "1"), (name: "Transfer-Encoding", value: "chunked"),
            (name: "Upgrade", value: "h2c"), (name: "TE", value: "trailers"), (name: "Proxy-Authorization", value: "Basic x"),
            (name: "Content-Type", value: "application/json"), (name: "X-Request-ID", value: "42"),
        ])
        #expect(kept.map(\.name) == ["Content-Type", "X-Request-ID"])
    }

    // MARK: Streaming

    /// A page of about 64 MiB comes back while the stand-in is still producing it: when the
    /// caller has its first MiB, the stand-in has written no more than that MiB, what the kernel
    /// holds on the loopback connection, and a little more. An agent that held the answer whole
    /// would have let the stand-in finish before sending a byte.
    ///
    /// The kernel's share is large: while the agent does not read (its caller is slow), the
    /// connection's receive buffer grows up to `tcp_rmem`'s maximum (32 MiB on these machines)
    /// and the stand-in's send buffer up to `tcp_wmem`'s. "Under half the body" failed once on a
    /// busy machine for that reason (34.9 of 65.6 MB), with the agent's own share unchanged.
    @Test func aLargeAnswerIsStreamedNotHeldWhole() async throws {
        try await InProcessAgent.withAgent { agent, state, _ in
            let download = try await Self.startLargeDownload(agent, state)
            let first = await download.read(atLeast: 1 << 20)
            let producedWhenFirstMiBArrived = await state.streamedBodyBytes
            let rest = await download.readToEnd()
            let status = try await download.finish()
            #expect(status == 0)
            let total = await state.streamedBodyBytes
            #expect(total > 64_000_000)
            #expect(first.count + rest.count == total)
            #expect(first.count >= 1 << 20)
            try Self.expectHeldBack(produced: producedWhenFirstMiBArrived, total: total)
            #expect(Array(first.prefix(12)) == Array(#"{"content":["#.utf8))
            #expect(rest.suffix(1) == [UInt8(ascii: "}")])
        }
    }

    /// The agent's event loop falling behind (a busy machine: other connections, or no core free)
    /// must not let the proxy read the tenant's answer faster than its caller takes it. The
    /// caller here reads nothing while the loop that writes to it is held for 1.5 s: the
    /// stand-in may produce only what the caller's socket, the kernel's buffers on the loopback
    /// connection and a little more can hold, as in ``aLargeAnswerIsStreamedNotHeldWhole``.
    @Test func aBusyEventLoopDoesNotLetTheProxyRunAheadOfItsCaller() async throws {
        let loop = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        try await InProcessAgent.withAgent(eventLoops: .init(server: loop)) { agent, state, _ in
            let download = try await Self.startLargeDownload(agent, state)
            while await state.streamedBodyBytes == 0 { try await Task.sleep(for: .milliseconds(1)) }
            let held = loop.next().submit { usleep(1_500_000) }
            try await Task.sleep(for: .milliseconds(1_400))
            let producedWhileHeld = await state.streamedBodyBytes
            try await held.get()
            let body = await download.readToEnd()
            #expect(try await download.finish() == 0)
            let total = await state.streamedBodyBytes
            #expect(body.count == total)
            try Self.expectHeldBack(produced: producedWhileHeld, total: total)
        }
        try await loop.shutdownGracefully()
    }

    /// The other way round: while the loop that writes to the tenant is held for 1.5 s, the
    /// proxy takes no more of a 64 MiB upload from its caller than a few MiB (the caller's socket,
    /// NIO's reads, the pacing); all of it still arrives.
    @Test func aBusyEventLoopDoesNotLetTheProxyTakeAnUploadFasterThanItSendsIt() async throws {
        let loop = MultiThreadedEventLoopGroup(numberOfThreads: 1)
        try await InProcessAgent.withAgent(eventLoops: .init(tenant: loop)) { agent, state, _ in
            #expect(try await proxyCurl(agent.socket, Self.recordsPath).status == 200, "the token and a connection exist")
            let size = 64 << 20
            let fd = try AgentSocket.connect(agent.socket)
            defer { close(fd) }
            let sent = Atomic(0)
            let head = "POST /v1/proxy/default/api/v2/uploads HTTP/1.1\r\nHost: localhost\r\n"
                + "Content-Type: application/octet-stream\r\nContent-Length: \(size)\r\n\r\n"
            let upload = Task {
                await onOwnThread {
                    _ = Array(head.utf8).withUnsafeBytes { send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
                    let chunk = [UInt8](repeating: 0x61, count: 64 * 1024)
                    while sent.load(ordering: .relaxed) < size {
                        let count = chunk.withUnsafeBytes { send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
                        guard count > 0 else { return }
                        sent.add(count, ordering: .relaxed)
                    }
                    shutdown(fd, Int32(SHUT_WR))
                }
            }
            while sent.load(ordering: .relaxed) < 4 << 20 { try await Task.sleep(for: .milliseconds(1)) }
            let sentBefore = sent.load(ordering: .relaxed)
            let held = loop.next().submit { usleep(1_500_000) }
            try await Task.sleep(for: .milliseconds(1_400))
            let sentWhileHeld = sent.load(ordering: .relaxed) - sentBefore
            try await held.get()
            await upload.value
            let answer = await onOwnThread { readAll(fd, guardSeconds: 30).text }
            #expect(answer.hasPrefix("HTTP/1.1 201"), "\(answer.prefix(200))")
            #expect(await state.uploads.last?.bytes == size)
            #expect(sentWhileHeld <= 16 << 20, "the caller sent \(sentWhileHeld) bytes while the tenant's loop was held")
        }
        try await loop.shutdownGracefully()
    }

    /// curl asking the proxy for a page of about 64 MiB (1,000 records of 64 KiB), read at the test's pace.
    private static func startLargeDownload(_ agent: InProcessAgent.Agent, _ state: StandInState) async throws -> StreamingCurl {
        await state.setRecordCount(1000)
        await state.setRecordPadding(bytes: 64 * 1024)
        return try await StreamingCurl(socket: agent.socket, target: recordsPath + "?page=0&size=1000")
    }

    /// While its caller has read at most 1 MiB of a streamed answer of `total` bytes, the stand-in
    /// has `produced` no more than that MiB, what the kernel holds on the loopback connection, and
    /// 4 MiB (the caller's socket, the agent's buffers).
    private static func expectHeldBack(
        produced: Int, total: Int, sourceLocation: SourceLocation = #_sourceLocation
    ) throws {
        let kernel = try tcpBufferMaximum("rmem") + tcpBufferMaximum("wmem")
        let bound = (1 << 20) + kernel + (4 << 20)
        #expect(
            bound < total, "the kernel could hold the whole body (\(kernel) bytes): nothing to tell apart",
            sourceLocation: sourceLocation)
        #expect(
            produced <= bound, "the stand-in had produced \(produced) of \(total) bytes (the kernel holds at most \(kernel))",
            sourceLocation: sourceLocation)
    }

    /// The largest buffer the kernel lets a TCP socket grow to: `net.ipv4.tcp_rmem` or `tcp_wmem`'s third value.
    private static func tcpBufferMaximum(_ name: String) throws -> Int {
        let text = try String(contentsOfFile: "/proc/sys/net/ipv4/tcp_\(name)", encoding: .utf8)
        return Int(text.split(whereSeparator: \.isWhitespace).last ?? "") ?? Int.max / 4
    }

    @Test func proxyStreamsAreCountedPerProfileAndGivenBackOnceOnReleaseOrWhenDropped() {
        let streams = ProxyStreams(limit: 2)
        var first = streams.acquire("p")
        let second = streams.acquire("p")
        #expect(first != nil && second != nil)
        #expect(streams.acquire("p") == nil, "a third is over the limit")
        let other = streams.acquire("q")
        #expect(other != nil, "another profile has its own limit")
        #expect(streams.inProgress("p") == 2 && streams.inProgress("q") == 1)
        second?.release()
        second?.release()
        #expect(streams.inProgress("p") == 1, "released once, counted once")
        first = nil
        #expect(streams.inProgress("p") == 0, "a dropped slot is given back")
        #expect(first == nil && streams.inProgress("q") == 1)
    }
}

// MARK: Helpers

/// curl's answer with its head.
struct ProxyAnswer {
    var status: Int
    var headers: [(name: String, value: String)]
    var body: [UInt8]

    func header(_ name: String) -> String? {
        headers.last { $0.name.caseInsensitiveCompare(name) == .orderedSame }?.value
    }
}

/// One request over the socket with curl, verbatim (`--path-as-is`), head and body kept.
func proxyCurl(
    _ socket: String, _ target: String, method: String = "GET", headers: [String] = [], data: String? = nil
) async throws -> ProxyAnswer {
    let dir = FileManager.default.temporaryDirectory.appendingPathComponent("proxy-\(UUID().uuidString)")
    try FileManager.default.createDirectory(at: dir, withIntermediateDirectories: true)
    defer { try? FileManager.default.removeItem(at: dir) }
    let head = dir.appendingPathComponent("head").path
    var arguments = ["-s", "-m", "30", "--path-as-is", "-X", method, "-D", head, "--unix-socket", socket]
    for header in headers { arguments += ["-H", header] }
    if let data { arguments += ["--data-binary", data] }
    arguments.append("http://localhost" + target)
    let result = try await runProcess("/usr/bin/curl", arguments, environment: ProcessInfo.processInfo.environment)
    #expect(result.status == 0, "curl failed: \(result.stderr)")
    let lines = (try? String(contentsOfFile: head, encoding: .utf8))?.components(separatedBy: "\r\n") ?? []
    let status = lines.first.flatMap { Int($0.split(separator: " ").dropFirst().first ?? "") } ?? 0
    let fields = lines.dropFirst().compactMap { line -> (name: String, value: String)? in
        guard let colon = line.firstIndex(of: ":") else { return nil }
        return (String(line[..<colon]), line[line.index(after: colon)...].trimmingCharacters(in: .whitespaces))
    }
    return ProxyAnswer(status: status, headers: fields, body: Array(result.stdout.utf8))
}

/// curl writing a download to a pipe that the test reads at its own pace, on a thread of its own
/// (blocking reads must not hold the test's cooperative threads). Read from one task at a time.
final class StreamingCurl: Sendable {
    private let curl: ChildProcess

    init(socket: String, target: String) async throws {
        curl = try await ChildProcess(
            ["/usr/bin/curl", "-s", "-f", "-m", "120", "--unix-socket", socket, "http://localhost" + target],
            stdout: .pipe)
    }

    /// At least `count` bytes (fewer only at the end of the output).
    func read(atLeast count: Int) async -> [UInt8] {
        await onOwnThread { [output = curl.output] in
            var bytes: [UInt8] = []
            while bytes.count < count {
                let chunk = output.readData(ofLength: 64 * 1024)
                if chunk.isEmpty { break }
                bytes += chunk
            }
            return bytes
        }
    }

    func readToEnd() async -> [UInt8] { await read(atLeast: Int.max) }

    /// Waits for curl and returns its exit status.
    func finish() async throws -> Int32 { try await curl.wait() }
}

/// Audit log lines, kept in memory.
final class AuditLines: Sendable {
    private let box = Mutex<[String]>([])

    var lines: [String] { box.withLock { $0 } }

    var logger: Logger {
        Logger(label: "rc-agent.audit") { _ in Handler(box: self) }
    }

    fileprivate func append(_ line: String) { box.withLock { $0.append(line) } }

    private struct Handler: LogHandler {
        let box: AuditLines
        var logLevel: Logger.Level = .info
        var metadata: Logger.Metadata = [:]

        subscript(metadataKey key: String) -> Logger.Metadata.Value? {
            get { metadata[key] }
            set { metadata[key] = newValue }
        }

        func log(
            level: Logger.Level, message: Logger.Message, metadata: Logger.Metadata?, source: String, file: String,
            function: String, line: UInt
        ) {
            let fields = self.metadata.merging(metadata ?? [:]) { $1 }.sorted { $0.key < $1.key }
            box.append(([message.description] + fields.map { "\($0.key)=\($0.value)" }).joined(separator: " "))
        }
    }
}
