import Foundation
import Logging
import RiskCloudStandIn
import Synchronization
import Testing

@testable import RCAgentCore

#if canImport(Glibc)
import Glibc
#endif

/// The real socket server on a temporary socket, with the real token client talking to the
/// stand-in on loopback; credentials come from an in-memory store (the keyring end to end is
/// the integration tests' job).
@Suite struct SocketServerTests {
    static let clientID = "agent-test-client"
    static let secret = "agent-test-secret-\(UUID().uuidString)"

    /// A private directory whose socket path fits in sun_path.
    struct TempDir {
        let path: String
        init() throws {
            let base = ProcessInfo.processInfo.environment["RC_SANDBOX"] ?? "/tmp"
            path = base + "/ss-" + String(UUID().uuidString.prefix(8)).lowercased()
            try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        }
        var socket: String { path + "/agent/agent.sock" }
    }

    /// A running agent server; `stop()` cancels it and waits until it has finished.
    struct Agent {
        let socket: String
        let cache: TokenCache
        let client: RiskCloudClient
        let task: Task<Void, any Error>

        func stop() async throws {
            task.cancel()
            defer { Task { try? await client.shutdown() } }
            try await task.value
        }
    }

    static func startAgent(
        listener: AgentListener, socketPath: String, standInURL: String, limits: AgentServerLimits = AgentServerLimits(),
        allowedUIDs: Set<UInt32> = [getuid()], audit: Logger = Logger(label: "rc-agent.audit")
    ) async throws -> Agent {
        let store = AgentMemoryStore([
            StoredCredential(
                profile: "default", clientID: clientID, url: standInURL, secret: Secret(secret), created: Date())
        ])
        let client = try RiskCloudClient()
        let cache = TokenCache(store: store, fetcher: client, clock: SystemClock())
        let profiles = try AgentProfiles(load: { ["default": standInURL] })
        var api = AgentAPI(
            cache: cache, profiles: profiles, store: store, clock: SystemClock(), socketPath: socketPath,
            requestShutdown: {}, audit: audit)
        api.proxyTransport = client
        let (ready, readyContinuation) = AsyncStream<Void>.makeStream()
        let server = AgentSocketServer(
            listener: listener, responder: api.router().buildResponder(), limits: limits, allowedUIDs: { allowedUIDs },
            onListening: { readyContinuation.yield() })
        let task = Task {
            defer { readyContinuation.finish() }
            try await server.run()
        }
        var iterator = ready.makeAsyncIterator()
        if await iterator.next() == nil {
            try? await client.shutdown()
            try await task.value
        }
        return Agent(socket: socketPath, cache: cache, client: client, task: task)
    }

    /// The stand-in with our client, and an agent on a fresh socket.
    static func withAgent(
        state: StandInState = StandInState(), limits: AgentServerLimits = AgentServerLimits(),
        allowedUIDs: Set<UInt32> = [getuid()], audit: Logger = Logger(label: "rc-agent.audit"),
        _ body: (Agent, StandInState, TempDir) async throws -> Void
    ) async throws {
        await state.addClient(id: clientID, secret: secret)
        let dir = try TempDir()
        defer { try? FileManager.default.removeItem(atPath: dir.path) }
        try await withStandIn(state) { url in
            let agent = try await startAgent(
                listener: .path(dir.socket), socketPath: dir.socket, standInURL: url, limits: limits, allowedUIDs: allowedUIDs,
                audit: audit)
            do {
                try await body(agent, state, dir)
                try await agent.stop()
            } catch {
                try? await agent.stop()
                throw error
            }
        }
    }

    // MARK: Tokens

    @Test func tokenOverTheSocketWithCurl() async throws {
        try await Self.withAgent { agent, state, _ in
            let json = try await curl(agent.socket, "/v1/token")
            #expect(json.status == 200)
            let document = try JSONSerialization.jsonObject(with: Data(json.body.utf8)) as? [String: Any]
            let token = try #require(document?["access_token"] as? String)
            #expect(!token.isEmpty)
            #expect(document?["token_type"] as? String == "Bearer")
            #expect(document?["profile"] as? String == "default")
            #expect((document?["url"] as? String)?.hasPrefix("http://127.0.0.1:") == true)
            #expect((document?["expires_in"] as? Int ?? 0) > 60)
            #expect((document?["expires_at"] as? String)?.hasSuffix("Z") == true)

            #expect(try await curl(agent.socket, "/v1/token?format=text").body == token + "\n")
            #expect(try await curl(agent.socket, "/v1/token?profile=default", headers: ["Accept: text/plain"]).body == token + "\n")
            #expect(try await AgentClient(socketPath: agent.socket).token(profile: "default").accessToken.reveal() == token)
            #expect(await state.tokenRequestCount == 1)

            #expect(try await curl(agent.socket, "/healthz").body == "ok\n")
            let status = try await AgentClient(socketPath: agent.socket).status()
            #expect(status.profiles.map(\.profile) == ["default"])
            #expect(status.profiles.first?.token.state == .valid)
            #expect(status.profiles.first?.clientID == Self.clientID)
            #expect(status.socket == agent.socket)
            #expect(!(try await curl(agent.socket, "/v1/status").body.contains(token)))
        }
    }

    @Test func twoHundredConcurrentColdRequestsCauseOneTokenCall() async throws {
        try await Self.withAgent { agent, state, _ in
            let client = AgentClient(socketPath: agent.socket)
            let tokens = try await withThrowingTaskGroup(of: String.self) { group in
                for _ in 0..<200 { group.addTask { try await client.token(profile: "default").accessToken.reveal() } }
                return try await group.reduce(into: Set<String>()) { $0.insert($1) }
            }
            #expect(tokens.count == 1)
            #expect(await state.tokenRequestCount == 1)
        }
    }

    @Test func errorsAreJSONWithTheRightStatus() async throws {
        try await Self.withAgent { agent, _, _ in
            let unknown = try await curl(agent.socket, "/v1/token?profile=nobody")
            #expect(unknown.status == 404)
            #expect(unknown.body.contains(#""code":"unknown_profile""#))
            let bad = try await curl(agent.socket, "/v1/token?profile=bad%20name")
            #expect(bad.status == 400)
            #expect(bad.body.contains(#""code":"bad_request""#))
            #expect(try await curl(agent.socket, "/v1/token?min_valid=soon").status == 400)
            let route = try await curl(agent.socket, "/v2/nothing")
            #expect(route.status == 404)
            #expect(route.body.contains(#""code":"not_found""#))
            await #expect(throws: AgentError.self) { try await AgentClient(socketPath: agent.socket).token(profile: "nobody") }
            do {
                _ = try await AgentClient(socketPath: agent.socket).token(profile: "nobody")
            } catch let error as AgentError {
                #expect(error.exitStatus == .notLoggedIn)
            }
        }
    }

    @Test func tenantOutageWithoutAValidTokenIsA502WithTheDiagnosis() async throws {
        let state = StandInState()
        // The outage lasts: a loaded machine may pass the first backoff (0.5 s) between the two
        // requests, and then the second one may ask the tenant again — and must fail again.
        await state.inject(.status(503, body: nil))
        try await Self.withAgent(state: state) { agent, state, _ in
            let failed = try await curl(agent.socket, "/v1/token")
            #expect(failed.status == 502)
            #expect(failed.body.contains(#""upstream_status":503"#))
            #expect(failed.body.contains(#""code":"tenant_unreachable""#))
            do {
                _ = try await AgentClient(socketPath: agent.socket).token(profile: "default")
                Issue.record("expected the diagnosis")
            } catch let error as AgentError {
                #expect(error.exitStatus == .tenantUnreachable)
            }
            // Backoff: at most one more attempt in the time two requests take (exact counts are
            // TokenCacheTests' job, on a test clock).
            #expect(await state.tokenRequestCount <= 2)
        }
    }

    @Test func rejectedCredentialsAre502WithoutARetryStorm() async throws {
        let state = StandInState()
        await state.inject(.status(401, body: nil))
        try await Self.withAgent(state: state) { agent, state, _ in
            for _ in 0..<20 {
                let answer = try await curl(agent.socket, "/v1/token")
                #expect(answer.status == 502)
                #expect(answer.body.contains(#""code":"credentials_rejected""#))
                #expect(answer.body.contains(#""upstream_status":401"#))
            }
            #expect(try await curl(agent.socket, "/v1/token/refresh", method: "POST").status == 502)
            #expect(await state.tokenRequestCount == 1)
            // logout/login tells the agent; then it asks again.
            await state.clearFailures()
            #expect(try await curl(agent.socket, "/v1/token", method: "DELETE").status == 200)
            #expect(try await curl(agent.socket, "/v1/token").status == 200)
            #expect(await state.tokenRequestCount == 2)
        }
    }

    // MARK: Socket hygiene

    @Test func socketIs0600InAPrivate0700Directory() async throws {
        try await Self.withAgent { agent, _, dir in
            let directoryMode = try mode(of: dir.path + "/agent")
            let socketMode = try mode(of: agent.socket)
            #expect(directoryMode == 0o700)
            #expect(socketMode == 0o600)
        }
    }

    @Test func socketIsRemovedWhenTheServerStops() async throws {
        let dir = try TempDir()
        defer { try? FileManager.default.removeItem(atPath: dir.path) }
        let agent = try await Self.startAgent(listener: .path(dir.socket), socketPath: dir.socket, standInURL: "http://127.0.0.1:9")
        #expect(FileManager.default.fileExists(atPath: dir.socket))
        try await agent.stop()
        #expect(!FileManager.default.fileExists(atPath: dir.socket))
    }

    @Test func staleSocketIsRemovedAndALiveAgentIsRefused() async throws {
        let dir = try TempDir()
        defer { try? FileManager.default.removeItem(atPath: dir.path) }
        try AgentSocket.prepareDirectory(forSocket: dir.socket)
        try makeStaleSocket(at: dir.socket)
        #expect(AgentSocket.probe(dir.socket) == .stale)

        let agent = try await Self.startAgent(listener: .path(dir.socket), socketPath: dir.socket, standInURL: "http://127.0.0.1:9")
        #expect(try await curl(agent.socket, "/healthz").status == 200)
        let error = await #expect(throws: SocketSetupError.self) {
            _ = try await Self.startAgent(listener: .path(dir.socket), socketPath: dir.socket, standInURL: "http://127.0.0.1:9")
        }
        #expect(error?.message.contains("already running") == true)
        #expect(try await curl(agent.socket, "/healthz").status == 200)
        try await agent.stop()
    }

    @Test func directoryOpenToOthersOrNotASocketIsRefused() async throws {
        let dir = try TempDir()
        defer { try? FileManager.default.removeItem(atPath: dir.path) }
        try FileManager.default.createDirectory(atPath: dir.path + "/agent", withIntermediateDirectories: false, attributes: [.posixPermissions: 0o755])
        #expect(throws: SocketSetupError.self) { try AgentSocket.prepareDirectory(forSocket: dir.socket) }
        chmod(dir.path + "/agent", 0o700)
        _ = FileManager.default.createFile(atPath: dir.socket, contents: Data("not a socket".utf8))
        #expect(throws: SocketSetupError.self) { try AgentSocket.clearStale(dir.socket) }
        #expect(FileManager.default.fileExists(atPath: dir.socket))
    }

    // MARK: Peers and limits

    @Test func peerOutsideTheAllowListIsRefusedWith403() async throws {
        // The server allows only uid 65534, so this process (another uid) is the stranger.
        try await Self.withAgent(allowedUIDs: [getuid() == 65534 ? 65533 : 65534]) { agent, state, _ in
            let refused = try await curl(agent.socket, "/v1/token")
            #expect(refused.status == 403)
            #expect(refused.body.contains(#""code":"forbidden""#))
            #expect(await state.tokenRequestCount == 0)
        }
    }

    @Test(.enabled(if: getuid() == 0, "needs root to run curl as another uid"))
    func anotherUIDIsRefusedEvenWhenItCanReachTheSocket() async throws {
        try await Self.withAgent { agent, state, dir in
            // Open the path up as a careless admin might; the peer check still refuses uid 65534.
            chmod(dir.path, 0o711)
            chmod(dir.path + "/agent", 0o711)
            chmod(agent.socket, 0o666)
            if let sandbox = ProcessInfo.processInfo.environment["RC_SANDBOX"] { chmod(sandbox, 0o711) }
            let result = try await run(
                "/usr/bin/setpriv",
                ["--reuid=65534", "--regid=65534", "--clear-groups", "/usr/bin/curl", "-s", "-w", "\n%{http_code}",
                 "--unix-socket", agent.socket, "http://localhost/v1/token"])
            if let sandbox = ProcessInfo.processInfo.environment["RC_SANDBOX"] { chmod(sandbox, 0o700) }
            #expect(result.stdout.hasSuffix("\n403"), "\(result.stdout) \(result.stderr)")
            #expect(result.stdout.contains(#""code":"forbidden""#))
            #expect(await state.tokenRequestCount == 0)
            #expect(try await curl(agent.socket, "/healthz").status == 200)
        }
    }

    @Test func oversizeHeadersAndASlowRequestDoNotBlockOthers() async throws {
        var limits = AgentServerLimits()
        limits.requestTimeout = .seconds(2)
        try await Self.withAgent(limits: limits) { agent, _, _ in
            // A client that starts a request and never finishes it.
            let slow = try AgentSocket.connect(agent.socket)
            defer { close(slow) }
            _ = "GET /v1/token HTTP/1.1\r\nHost: x\r\nX-Slow: ".withCString { send(slow, $0, strlen($0), 0) }
            // One whose headers are far over the limit.
            let huge = try AgentSocket.connect(agent.socket)
            defer { close(huge) }
            let header = "GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: " + String(repeating: "a", count: 64 * 1024) + "\r\n\r\n"
            _ = header.withCString { send(huge, $0, strlen($0), Int32(MSG_NOSIGNAL)) }

            for _ in 0..<5 { #expect(try await curl(agent.socket, "/healthz").status == 200) }
            #expect(try await AgentClient(socketPath: agent.socket).token(profile: "default").tokenType == "Bearer")

            let hugeAnswer = readAll(huge)
            #expect(hugeAnswer.isEmpty || hugeAnswer.hasPrefix("HTTP/1.1 4"), "\(hugeAnswer.prefix(80))")
            // The slow one is cut off by the request timeout (EOF, not a hang).
            #expect(readAll(slow).isEmpty)
        }
    }

    @Test func servesASocketPassedAsADescriptor() async throws {
        let dir = try TempDir()
        defer { try? FileManager.default.removeItem(atPath: dir.path) }
        try AgentSocket.prepareDirectory(forSocket: dir.socket)
        let fd = try listeningSocket(at: dir.socket)
        let agent = try await Self.startAgent(
            listener: .descriptor(fd, path: dir.socket), socketPath: dir.socket, standInURL: "http://127.0.0.1:9")
        #expect(try await curl(dir.socket, "/healthz").body == "ok\n")
        try await agent.stop()
        // The socket belongs to whoever passed it (systemd): left in place.
        #expect(FileManager.default.fileExists(atPath: dir.socket))
    }
}

// MARK: Helpers

struct CurlResult {
    var status: Int
    var body: String
}

struct ProcessResult {
    var status: Int32
    var stdout: String
    var stderr: String
}

/// Runs a program to completion. The blocking reads and wait happen on a thread of their own: on
/// a 2-core machine they would otherwise take the whole cooperative pool the server needs.
func run(_ executable: String, _ arguments: [String]) async throws -> ProcessResult {
    let process = Process()
    process.executableURL = URL(fileURLWithPath: executable)
    process.arguments = arguments
    let out = Pipe()
    let err = Pipe()
    process.standardOutput = out
    process.standardError = err
    process.standardInput = FileHandle.nullDevice
    try process.run()
    return await withCheckedContinuation { continuation in
        Thread.detachNewThread {
            let stderrBox = Mutex(Data())
            let done = DispatchSemaphore(value: 0)
            Thread.detachNewThread {
                let data = err.fileHandleForReading.readDataToEndOfFile()
                stderrBox.withLock { $0 = data }
                done.signal()
            }
            let stdout = out.fileHandleForReading.readDataToEndOfFile()
            done.wait()
            process.waitUntilExit()
            let stderr = stderrBox.withLock { $0 }
            continuation.resume(
                returning: ProcessResult(
                    status: process.terminationStatus, stdout: String(decoding: stdout, as: UTF8.self),
                    stderr: String(decoding: stderr, as: UTF8.self)))
        }
    }
}

func curl(_ socket: String, _ target: String, method: String = "GET", headers: [String] = []) async throws -> CurlResult {
    var arguments = ["-s", "-m", "30", "-X", method, "-w", "\n%{http_code}", "--unix-socket", socket]
    for header in headers { arguments += ["-H", header] }
    arguments.append("http://localhost" + target)
    let result = try await run("/usr/bin/curl", arguments)
    let separator = result.stdout.lastIndex(of: "\n") ?? result.stdout.startIndex
    let body = String(result.stdout[..<separator])
    let code = Int(result.stdout[result.stdout.index(after: separator)...]) ?? 0
    return CurlResult(status: code, body: body)
}

func mode(of path: String) throws -> Int {
    let attributes = try FileManager.default.attributesOfItem(atPath: path)
    return (attributes[.posixPermissions] as? Int ?? -1) & 0o777
}

/// Reads until EOF (the server closed), with a 10 s guard against a hang.
func readAll(_ fd: CInt) -> String {
    var limit = timeval(tv_sec: 10, tv_usec: 0)
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &limit, socklen_t(MemoryLayout<timeval>.size))
    var data: [UInt8] = []
    var buffer = [UInt8](repeating: 0, count: 4096)
    while true {
        let count = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
        if count <= 0 { break }
        data += buffer[0..<count]
    }
    return String(decoding: data, as: UTF8.self)
}

private func boundSocket(at path: String) throws -> CInt {
    let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
    var address = sockaddr_un()
    address.sun_family = sa_family_t(AF_UNIX)
    withUnsafeMutableBytes(of: &address.sun_path) { raw in
        for (index, byte) in path.utf8.enumerated() { raw[index] = byte }
    }
    let result = withUnsafePointer(to: &address) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
    }
    guard result == 0 else { throw SocketSetupError("bind: \(String(cString: strerror(errno)))") }
    return fd
}

/// A socket file nobody listens on, like the one a crashed agent leaves.
func makeStaleSocket(at path: String) throws {
    let fd = try boundSocket(at: path)
    close(fd)
}

/// A bound, listening socket, as systemd passes one.
func listeningSocket(at path: String) throws -> CInt {
    let fd = try boundSocket(at: path)
    guard listen(fd, 16) == 0 else { throw SocketSetupError("listen failed") }
    return fd
}
