import Foundation
import Logging
import RiskCloudStandIn
import Synchronization
import Testing

@testable import RCAgentClient
@testable import RCAgentCore
@testable import RCAgentDaemon
@testable import RCAgentLive
import RCAgentTestSupport

#if canImport(Glibc)
import Glibc
#endif

/// The real socket server on a temporary socket, with the real token client talking to the
/// stand-in on loopback; credentials come from an in-memory store (the keyring end to end is
/// the integration tests' job).
@Suite struct SocketServerTests {
    // MARK: Tokens

    @Test func tokenOverTheSocketWithCurl() async throws {
        try await InProcessAgent.withAgent { agent, state, _ in
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
            #expect(status.profiles.first?.clientID == InProcessAgent.clientID)
            #expect(status.socket == agent.socket)
            #expect(!(try await curl(agent.socket, "/v1/status").body.contains(token)))
        }
    }

    @Test func twoHundredConcurrentColdRequestsCauseOneTokenCall() async throws {
        try await InProcessAgent.withAgent { agent, state, _ in
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
        try await InProcessAgent.withAgent { agent, _, _ in
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
        try await InProcessAgent.withAgent(state: state) { agent, state, _ in
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
            // The first request asked the tenant; backoff allows at most one more attempt in the
            // time two requests take (exact counts are TokenCacheTests' job, on a test clock).
            #expect((1...2).contains(await state.tokenRequestCount))
        }
    }

    @Test func rejectedCredentialsAre502WithoutARetryStorm() async throws {
        let state = StandInState()
        await state.inject(.status(401, body: nil))
        try await InProcessAgent.withAgent(state: state) { agent, state, _ in
            for _ in 0..<20 {
                let answer = try await curl(agent.socket, "/v1/token")
                #expect(answer.status == 502)
                #expect(answer.body.contains(#""code":"credentials_rejected""#))
                #expect(answer.body.contains(#""upstream_status":401"#))
            }
            #expect(try await curl(agent.socket, "/v1/token/refresh", method: "POST").status == 502)
            #expect(await state.tokenRequestCount == 1)
            // DELETE alone keeps the latch: the stored credentials are the refused ones.
            await state.clearFailures()
            #expect(try await curl(agent.socket, "/v1/token", method: "DELETE").status == 200)
            #expect(try await curl(agent.socket, "/v1/token").status == 502)
            #expect(await state.tokenRequestCount == 1)
            // A login stores the credentials again and tells the agent; then it asks again.
            let stored = try #require(try await agent.store.load(profile: "default"))
            try await agent.store.save(stored)
            #expect(try await curl(agent.socket, "/v1/token", method: "DELETE").status == 200)
            #expect(try await curl(agent.socket, "/v1/token").status == 200)
            #expect(await state.tokenRequestCount == 2)
        }
    }

    // MARK: Socket hygiene

    @Test func socketIs0600InAPrivate0700Directory() async throws {
        try await InProcessAgent.withAgent { agent, _, dir in
            let directoryMode = try mode(of: dir.path + "/agent")
            let socketMode = try mode(of: agent.socket)
            #expect(directoryMode == 0o700)
            #expect(socketMode == 0o600)
        }
    }

    @Test func socketIsRemovedWhenTheServerStops() async throws {
        let dir = try InProcessAgent.TempDir()
        defer { try? FileManager.default.removeItem(atPath: dir.path) }
        let agent = try await InProcessAgent.startAgent(listener: .path(dir.socket), socketPath: dir.socket, standInURL: "http://127.0.0.1:9")
        #expect(FileManager.default.fileExists(atPath: dir.socket))
        try await agent.stop()
        #expect(!FileManager.default.fileExists(atPath: dir.socket))
    }

    @Test func staleSocketIsRemovedAndALiveAgentIsRefused() async throws {
        let dir = try InProcessAgent.TempDir()
        defer { try? FileManager.default.removeItem(atPath: dir.path) }
        try AgentSocket.prepareDirectory(forSocket: dir.socket)
        try makeStaleSocket(at: dir.socket)
        #expect(AgentSocket.probe(dir.socket) == .stale)

        let agent = try await InProcessAgent.startAgent(listener: .path(dir.socket), socketPath: dir.socket, standInURL: "http://127.0.0.1:9")
        #expect(try await curl(agent.socket, "/healthz").status == 200)
        let error = await #expect(throws: SocketSetupError.self) {
            _ = try await InProcessAgent.startAgent(listener: .path(dir.socket), socketPath: dir.socket, standInURL: "http://127.0.0.1:9")
        }
        #expect(error?.message.contains("already running") == true)
        #expect(try await curl(agent.socket, "/healthz").status == 200)
        try await agent.stop()
    }

    @Test func directoryOpenToOthersOrNotASocketIsRefused() async throws {
        let dir = try InProcessAgent.TempDir()
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
        try await InProcessAgent.withAgent(allowedUIDs: [getuid() == 65534 ? 65533 : 65534]) { agent, state, _ in
            let refused = try await curl(agent.socket, "/v1/token")
            #expect(refused.status == 403)
            #expect(refused.body.contains(#""code":"forbidden""#))
            #expect(await state.tokenRequestCount == 0)
        }
    }

    @Test(.enabled(if: getuid() == 0, "needs root to run curl as another uid"))
    func anotherUIDIsRefusedEvenWhenItCanReachTheSocket() async throws {
        try await InProcessAgent.withAgent { agent, state, dir in
            // Open the path up as a careless admin might; the peer check still refuses uid 65534.
            chmod(dir.path, 0o711)
            chmod(dir.path + "/agent", 0o711)
            chmod(agent.socket, 0o666)
            if let sandbox = ProcessInfo.processInfo.environment["RC_SANDBOX"] { chmod(sandbox, 0o711) }
            let result = try await runProcess(
                "/usr/bin/setpriv",
                ["--reuid=65534", "--regid=65534", "--clear-groups", "/usr/bin/curl", "-s", "-w", "\n%{http_code}",
                 "--unix-socket", agent.socket, "http://localhost/v1/token"], environment: ProcessInfo.processInfo.environment)
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
        try await InProcessAgent.withAgent(limits: limits) { agent, _, _ in
            // A client that starts a request and never finishes it.
            let slow = try AgentSocket.connect(agent.socket)
            defer { close(slow) }
            let slowStarted = DispatchTime.now().uptimeNanoseconds
            _ = "GET /v1/token HTTP/1.1\r\nHost: x\r\nX-Slow: ".withCString { send(slow, $0, strlen($0), 0) }
            // One whose headers are far over the limit.
            let huge = try AgentSocket.connect(agent.socket)
            defer { close(huge) }
            let header = "GET /healthz HTTP/1.1\r\nHost: x\r\nX-Big: " + String(repeating: "a", count: 64 * 1024) + "\r\n\r\n"
            _ = header.withCString { send(huge, $0, strlen($0), Int32(MSG_NOSIGNAL)) }

            for _ in 0..<5 { #expect(try await curl(agent.socket, "/healthz").status == 200) }
            #expect(try await AgentClient(socketPath: agent.socket).token(profile: "default").tokenType == "Bearer")

            let hugeAnswer = readAll(huge)
            #expect(hugeAnswer.ending == .closed, "\(hugeAnswer.ending)")
            #expect(hugeAnswer.text.hasPrefix("HTTP/1.1 431"), "\(hugeAnswer.text.prefix(80))")
            #expect(hugeAnswer.text.contains(#""code":"headers_too_large""#), "\(hugeAnswer.text.prefix(400))")
            // The slow one is cut off by the 2 s request deadline: the server closes it (not the
            // read's 10 s guard), with nothing sent, and not before the deadline.
            let slowAnswer = readAll(slow)
            let slowSeconds = Double(DispatchTime.now().uptimeNanoseconds - slowStarted) / 1e9
            #expect(slowAnswer.ending == .closed, "\(slowAnswer.ending) after \(slowAnswer.seconds) s")
            #expect(slowAnswer.text == "", "\(slowAnswer.text.prefix(80))")
            #expect(slowSeconds >= 1.9, "closed after \(slowSeconds) s, before the 2 s deadline")
        }
    }

    /// The request deadline runs again from each answer: a keep-alive connection that asks late
    /// in its first deadline is not cut off at that deadline, but one request timeout after its
    /// answer — for an answer from the fast path and one from the router alike.
    ///
    /// The request comes 1.5 s into a 4 s deadline: a loaded machine that runs the test's thread
    /// late (it once came after a 2 s deadline) still sends it in time.
    @Test func theRequestDeadlineRestartsAfterEachAnswer() async throws {
        var limits = AgentServerLimits()
        limits.requestTimeout = .seconds(4)
        try await InProcessAgent.withAgent(limits: limits) { agent, _, _ in
            #expect(try await curl(agent.socket, "/v1/token?format=text").status == 200)  // cached from now on
            for target in ["/v1/token?profile=default&format=text", "/healthz"] {
                let fd = try AgentSocket.connect(agent.socket)
                defer { close(fd) }
                try await Task.sleep(nanoseconds: 1_500_000_000)
                let (head, rest, seconds) = await onOwnThread {
                    let request = "GET \(target) HTTP/1.1\r\nHost: x\r\n\r\n"
                    _ = request.withCString { send(fd, $0, strlen($0), Int32(MSG_NOSIGNAL)) }
                    var answer = [UInt8](repeating: 0, count: 4096)
                    let count = recv(fd, &answer, answer.count, 0)
                    let answered = DispatchTime.now().uptimeNanoseconds
                    let rest = readAll(fd)
                    let seconds = Double(DispatchTime.now().uptimeNanoseconds - answered) / 1e9
                    return (String(decoding: answer[0..<max(count, 0)], as: UTF8.self), rest, seconds)
                }
                #expect(head.hasPrefix("HTTP/1.1 200"), "\(target): \(head)")
                #expect(rest.ending == .closed && rest.text.isEmpty, "\(target): \(rest)")
                #expect(seconds >= 3.9, "\(target): closed \(seconds) s after the answer, before the 4 s deadline")
            }
        }
    }

    /// A burst of connections leaves the allocator's free lists full (about 10 MB after 512 at once):
    /// once they have all closed the server hands that memory back, once per burst, and never for a
    /// few connections at a time.
    @Test func freeMemoryIsReleasedOnceAfterABurstOfConnections() async throws {
        let releases = CountingMemoryRelease()
        var limits = AgentServerLimits()
        limits.memoryReleaseBurst = 40
        try await InProcessAgent.withAgent(limits: limits, memory: releases) { agent, _, _ async throws in
            for _ in 0..<10 {  // one at a time: never a burst
                #expect(try await curl(agent.socket, "/healthz").status == 200)
            }
            // Open together, each answered, then all closed.
            var burst = await openAnswered(50, agent.socket)
            #expect(burst.count == 50, "only \(burst.count) of the burst's connections were answered")
            #expect(releases.count == 0, "released while the burst's connections were open")
            burst.forEach { close($0) }
            #expect(await releases.wait(for: 1), "nothing released after the burst closed")
            for _ in 0..<10 {
                #expect(try await curl(agent.socket, "/healthz").status == 200)
            }
            #expect(releases.count == 1)
            // A second burst at once: released too, once the interval since the first has passed.
            burst = await openAnswered(50, agent.socket)
            burst.forEach { close($0) }
            #expect(await releases.wait(for: 2), "the second burst was never released")
        }
    }

    /// Many connections one after another (a script asking once a second, bad input) leave freed
    /// buffers behind as a burst does: after `memoryReleaseChurn` of them the memory goes back too,
    /// once per that many, with never more than one open at a time.
    @Test func freeMemoryIsReleasedAfterManyConnectionsInTurn() async throws {
        let releases = CountingMemoryRelease()
        var limits = AgentServerLimits()
        limits.memoryReleaseChurn = 30
        try await InProcessAgent.withAgent(limits: limits, memory: releases) { agent, _, _ async throws in
            for _ in 0..<29 {
                #expect(try await curl(agent.socket, "/healthz").status == 200)
            }
            #expect(releases.count == 0, "released before \(limits.memoryReleaseChurn) connections")
            #expect(try await curl(agent.socket, "/healthz").status == 200)
            #expect(await releases.wait(for: 1), "nothing released after \(limits.memoryReleaseChurn) connections")
            for _ in 0..<20 {
                #expect(try await curl(agent.socket, "/healthz").status == 200)
            }
            #expect(releases.count == 1, "released again before another \(limits.memoryReleaseChurn) connections")
        }
    }

    /// `count` connections to `socket`, each with an answered `GET /healthz`, left open.
    private func openAnswered(_ count: Int, _ socket: String) async -> [CInt] {
        await onOwnThread {
            var fds: [CInt] = []
            for _ in 0..<count {
                guard let fd = try? AgentSocket.connect(socket) else { break }
                fds.append(fd)
                let request = "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"
                _ = request.withCString { send(fd, $0, strlen($0), Int32(MSG_NOSIGNAL)) }
                var answer = [UInt8](repeating: 0, count: 1024)
                guard recv(fd, &answer, answer.count, 0) > 0 else { break }
            }
            return fds
        }
    }

    /// DoctorCLITests.allGreenWithARunningAgent once read "no answer within 5 s" right after the
    /// agent started: its status waits for the keyring's list of items, which a keyring busy with
    /// other clients kept longer than doctor's 5 s. The agent itself answers at once: `/healthz`
    /// while the list is pending, and doctor's agent check waits for the status (6 s here).
    @Test func aSlowKeyringDelaysTheStatusNotTheAgent() async throws {
        try await InProcessAgent.withAgent(wrapStore: { SlowListStore($0, seconds: 6) }) { agent, _, dir in
            let statusTask = Task { try await AgentClient(socketPath: agent.socket, timeout: 30).status() }
            let health = try await curl(agent.socket, "/healthz")
            #expect(health.body == "ok\n")
            let token = try await AgentClient(socketPath: agent.socket, timeout: 30).token(profile: "default")
            #expect(token.tokenType == "Bearer")
            let status = try await statusTask.value
            #expect(status.profiles.map(\.profile) == ["default"])

            let check = DoctorChecks.Agent(input: .init(
                configFlag: dir.path + "/none.toml", profileFlag: "default", socketFlag: agent.socket, environment: [:]))
            let result = await check.run(profile: "default", backend: nil)
            #expect(result.status == .ok, "\(result.message)")
            #expect(result.message.contains("token for 'default' valid"), "\(result.message)")
        }
    }

    @Test func aBodyOverTheOwnEndpointsLimitIsAnswered413ThenClosed() async throws {
        try await InProcessAgent.withAgent { agent, _, _ in
            let client = try AgentSocket.connect(agent.socket)
            defer { close(client) }
            let body = String(repeating: "b", count: 20 * 1024)
            let request = "POST /v1/token/refresh?profile=default HTTP/1.1\r\nHost: x\r\nContent-Length: \(body.utf8.count)\r\n\r\n" + body
            _ = request.withCString { send(client, $0, strlen($0), Int32(MSG_NOSIGNAL)) }
            let read = readAll(client)
            #expect(read.ending == .closed, "\(read.ending)")
            let answer = read.text
            #expect(answer.hasPrefix("HTTP/1.1 413"), "\(answer.prefix(80))")
            #expect(answer.lowercased().contains("connection: close"), "\(answer)")
            #expect(answer.contains(#""code":"request_too_large""#) && answer.contains("16384 bytes"), "\(answer)")
            #expect(try await curl(agent.socket, "/healthz").status == 200)
        }
    }

    @Test func servesASocketPassedAsADescriptor() async throws {
        let dir = try InProcessAgent.TempDir()
        defer { try? FileManager.default.removeItem(atPath: dir.path) }
        try AgentSocket.prepareDirectory(forSocket: dir.socket)
        let fd = try listeningSocket(at: dir.socket)
        let agent = try await InProcessAgent.startAgent(
            listener: .descriptor(fd, path: dir.socket), socketPath: dir.socket, standInURL: "http://127.0.0.1:9")
        #expect(try await curl(dir.socket, "/healthz").body == "ok\n")
        try await agent.stop()
        // The socket belongs to whoever passed it (systemd): left in place.
        #expect(FileManager.default.fileExists(atPath: dir.socket))
    }
}

/// Counts the server's calls to release memory.
private final class CountingMemoryRelease: MemoryReleasing {
    private let calls = Mutex(0)

    var count: Int { calls.withLock { $0 } }

    func releaseFreeMemory() { calls.withLock { $0 += 1 } }

    /// True once `releases` have happened; false if they did not within 30 s (a hang, not a
    /// timing check: the server waits 5 s between releases).
    func wait(for releases: Int) async -> Bool {
        for _ in 0..<3000 where count < releases { try? await Task.sleep(nanoseconds: 10_000_000) }
        return count >= releases
    }
}

/// The fast path's coalesced audit, on its own.
@Suite struct ServedTokenAuditTests {
    /// A process that reuses a pid (same uid and executable) within the interval is a new peer: its
    /// first token is logged at once, not folded into the earlier process's count.
    @Test func aReusedPidIsANewProcess() {
        let lines = AuditLines()
        let audit = ServedTokenAudit(audit: lines.logger)
        let peer = PeerCredentials(pid: 4242, uid: 1000, gid: 1000)
        let now = Date()
        audit.served("default", peer: peer, executable: "/usr/bin/curl", started: 100, now: now)
        audit.served("default", peer: peer, executable: "/usr/bin/curl", started: 100, now: now + 1)
        #expect(lines.lines.count == 1, "\(lines.lines)")
        audit.served("default", peer: peer, executable: "/usr/bin/curl", started: 900, now: now + 2)
        #expect(lines.lines.count == 2, "\(lines.lines)")
        #expect(lines.lines.last?.contains("count=1") == true, "\(lines.lines)")
        audit.flush(now: now + 3)
        #expect(lines.lines.count == 3 && lines.lines.last?.contains("count=1") == true, "\(lines.lines)")
    }

    /// This process's start time reads from /proc; a pid with no process has none.
    @Test func startTimeNamesTheProcess() throws {
        let own = try #require(PeerCredentials(pid: getpid(), uid: getuid(), gid: getgid()).startTime)
        #expect(own > 0)
        #expect(PeerCredentials(pid: Int32.max, uid: 0, gid: 0).startTime == nil)
    }

    /// Field 22 is counted from the last ')': a command name with spaces and parentheses does not
    /// shift it; a line cut short or with a non-number there has none.
    @Test func startTimeIsFieldTwentyTwoAfterTheName() {
        func line(_ name: String, _ field22: String) -> ArraySlice<UInt8> {
            let fields = (3...21).map(String.init) + [field22] + ["23", "24"]
            return ArraySlice(Array("4242 (\(name)) S \(fields.dropFirst().joined(separator: " "))\n".utf8))
        }
        #expect(PeerCredentials.startTime(stat: line("bash", "987654")) == 987_654)
        #expect(PeerCredentials.startTime(stat: line("a) (b c) 1 2", "31337")) == 31_337)
        #expect(PeerCredentials.startTime(stat: line("x", "12ab")) == nil)
        #expect(PeerCredentials.startTime(stat: ArraySlice(Array("4242 (bash) S 1 2 3".utf8))) == nil)
        #expect(PeerCredentials.startTime(stat: ArraySlice(Array("no name here".utf8))) == nil)
    }
}
