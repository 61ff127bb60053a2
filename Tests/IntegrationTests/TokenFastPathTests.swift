import Foundation
import Glibc
import RCAgentCore
import RCAgentTestSupport
import Testing

/// The cached-token fast path (a handler on the connection's event loop in front of the router)
/// against the real agent: the same bytes as the router, the same decisions, in order on a
/// keep-alive connection, and in the audit trail.
@Suite(.serialized) struct TokenFastPathTests {
    /// One response read off a raw connection.
    struct RawResponse {
        /// The status line and the header lines, exactly as sent.
        var head: String
        var status: Int
        var headers: [(name: String, value: String)]
        var body: String

        func header(_ name: String) -> String? { headers.first { $0.name.lowercased() == name.lowercased() }?.value }
    }

    /// Sends `requests` in ONE write on a fresh connection (the last one closes it) and reads
    /// every response until the agent closes.
    static func exchange(_ socket: String, _ requests: [String]) throws -> [RawResponse] {
        let fd = try AgentSocket.connect(socket)
        defer { close(fd) }
        let bytes = Array(requests.joined().utf8)
        #expect(send(fd, bytes, bytes.count, Int32(MSG_NOSIGNAL)) == bytes.count)
        let read = readAll(fd)
        #expect(read.ending == .closed, "\(read.ending)")
        return parse(Array(read.text.utf8))
    }

    /// `GET target` with `headers`; `last` asks the agent to close after answering.
    static func get(_ target: String, headers: [String] = [], last: Bool = false) -> String {
        "GET \(target) HTTP/1.1\r\nHost: localhost\r\n" + (headers + (last ? ["Connection: close"] : []))
            .map { $0 + "\r\n" }.joined() + "\r\n"
    }

    static func parse(_ bytes: [UInt8]) -> [RawResponse] {
        var responses: [RawResponse] = []
        var rest = bytes[...]
        let separator: [UInt8] = [13, 10, 13, 10]
        while let end = rest.firstRange(of: separator) {
            let head = String(decoding: rest[rest.startIndex..<end.lowerBound], as: UTF8.self)
            let lines = head.components(separatedBy: "\r\n")
            let status = Int(lines[0].split(separator: " ")[1]) ?? 0
            let headers = lines.dropFirst().map { line in
                let parts = line.split(separator: ":", maxSplits: 1).map { $0.trimmingCharacters(in: .whitespaces) }
                return (name: parts[0], value: parts.count > 1 ? parts[1] : "")
            }
            let length = Int(headers.first { $0.name.lowercased() == "content-length" }?.value ?? "0") ?? 0
            let bodyStart = end.upperBound
            let bodyEnd = min(rest.endIndex, bodyStart + length)
            responses.append(
                RawResponse(
                    head: head, status: status, headers: headers,
                    body: String(decoding: rest[bodyStart..<bodyEnd], as: UTF8.self)))
            rest = rest[bodyEnd...]
        }
        return responses
    }

    /// The `token served` lines of the agent's log, as key=value pairs.
    static func servedLines(_ world: AgentWorld) -> [[String: String]] {
        let log = (try? String(contentsOfFile: world.sandbox.root + "/state/rc-agent/agent.log", encoding: .utf8)) ?? ""
        return log.split(separator: "\n").filter { $0.contains("token served") }.map { line in
            var fields: [String: String] = [:]
            for word in line.split(separator: " ") {
                let pair = word.split(separator: "=", maxSplits: 1)
                if pair.count == 2 { fields[String(pair[0])] = String(pair[1]) }
            }
            return fields
        }
    }

    /// The JSON body with `expires_in` blanked (it may tick between two answers).
    static func timeless(_ body: String) -> String {
        body.replacingOccurrences(of: #""expires_in":[0-9]+"#, with: #""expires_in":_"#, options: .regularExpression)
    }

    // MARK: Tests

    /// A `min_valid` the held token cannot meet goes to the router (which, in the quiet period after
    /// the fetch, answers with the best token); the answers without it come from the fast path. Both
    /// carry the same status line, headers in the same order, and body — JSON, text by `format` and
    /// by `Accept`.
    @Test func fastPathAnswersAreTheRoutersBytes() async throws {
        try await AgentWorld.run { world in
            try await world.start()
            let profile = world.profile
            #expect(try await world.token().status == 200)  // cold: fetched through the router
            let upstream = await world.state.tokenRequestCount
            let linesBefore = Self.servedLines(world).count
            // Per connection: the fast path's answer, then the router's (a later request on the
            // connection is never answered ahead of one the router still holds).
            let routed = "&min_valid=31622400"
            var pairs: [(fast: RawResponse, slow: RawResponse)] = []
            for (query, headers) in [("", [String]()), ("&format=text", []), ("", ["Accept: text/plain"])] {
                let answers = try Self.exchange(
                    world.socket,
                    [
                        Self.get("/v1/token?profile=\(profile)\(query)", headers: headers),
                        Self.get("/v1/token?profile=\(profile)\(query)\(routed)", headers: headers),
                        Self.get("/healthz", last: true),
                    ])
                try #require(answers.count == 3, "\(answers.map(\.head))")
                #expect(answers[2].body == "ok\n")
                pairs.append((answers[0], answers[1]))
            }
            let token = try #require(
                (try JSONSerialization.jsonObject(with: Data(pairs[0].fast.body.utf8)) as? [String: Any])?["access_token"]
                    as? String)
            world.sandbox.leaks.watch(token)
            let lengthless = { (head: String) in
                head.replacingOccurrences(of: #"Content-Length: [0-9]+"#, with: "", options: .regularExpression)
            }
            for (index, pair) in pairs.enumerated() {
                #expect(pair.fast.status == 200, "\(index)")
                #expect(
                    pair.fast.headers.map(\.name) == ["Content-Type", "Content-Length", "Cache-Control"], "\(pair.fast.head)")
                #expect(pair.fast.header("Cache-Control") == "no-store")
                #expect(Self.timeless(pair.fast.body) == Self.timeless(pair.slow.body), "\(index)")
                #expect(lengthless(pair.fast.head) == lengthless(pair.slow.head), "\(pair.fast.head)\n\(pair.slow.head)")
                #expect(Int(pair.fast.header("Content-Length") ?? "") == pair.fast.body.utf8.count)
            }
            // One request per connection with `Connection: close` (as `rc-agent token` asks): the
            // same answer, then the agent ends the connection.
            let single = try Self.exchange(world.socket, [Self.get("/v1/token?profile=\(profile)", last: true)])
            try #require(single.count == 1)
            #expect(Self.timeless(single[0].body) == Self.timeless(pairs[0].fast.body))
            #expect(lengthless(single[0].head) == lengthless(pairs[0].fast.head), "\(single[0].head)")
            #expect(pairs[0].fast.body.contains(#""rotation":{"#), "\(pairs[0].fast.body.count) bytes")
            #expect(pairs[1].fast.body == token + "\n" && pairs[2].fast.body == token + "\n")
            #expect(pairs[1].fast.header("Content-Type") == "text/plain; charset=utf-8")
            // Answered with the held token, never by another upstream call.
            #expect(await world.state.tokenRequestCount == upstream)
            // The router's answers have a line each; the fast path's (a count) are this process's
            // for this profile: its first logged at once, the rest counted until the agent stops.
            let lines = Array(Self.servedLines(world).dropFirst(linesBefore))
            #expect(lines.filter { $0["count"] != nil }.map { $0["count"] } == ["1"], "\(lines)")
            #expect(lines.filter { $0["count"] == nil }.count == 3, "\(lines)")
        }
    }

    /// A slow router answer first, then requests the fast path could answer, on one connection in
    /// one write: the answers come back in the order asked.
    @Test func pipelinedMixedRequestsAreAnsweredInOrder() async throws {
        try await AgentWorld.run { world in
            try await world.start()
            let profile = world.profile
            #expect(try await world.token().status == 200)  // warm
            let requests = [
                Self.get("/v1/status"),
                Self.get("/v1/token?profile=\(profile)&format=text"),
                Self.get("/healthz"),
                Self.get("/v1/token?profile=\(profile)"),
                Self.get("/v1/token?profile=\(profile)&format=text"),
                Self.get("/v1/nothing-here"),
                Self.get("/v1/token?profile=\(profile)&format=text"),
                Self.get("/healthz", last: true),
            ]
            for round in 0..<5 {
                let answers = try Self.exchange(world.socket, requests)
                try #require(answers.count == requests.count, "round \(round): \(answers.map(\.head))")
                #expect(answers[0].body.contains(#""profiles":"#), "round \(round): \(answers[0].body.prefix(60))")
                #expect(answers[1].header("Content-Type") == "text/plain; charset=utf-8", "round \(round)")
                #expect(answers[2].body == "ok\n", "round \(round)")
                #expect(answers[3].body.hasPrefix(#"{"access_token":"#), "round \(round)")
                #expect(answers[4].header("Content-Type") == "text/plain; charset=utf-8", "round \(round)")
                #expect(answers[5].status == 404, "round \(round)")
                #expect(answers[6].header("Content-Type") == "text/plain; charset=utf-8", "round \(round)")
                #expect(answers[7].body == "ok\n", "round \(round)")
            }
            // A request the router answers with `Connection: close` is the connection's last: a
            // token request behind it gets no answer from the fast path either.
            for round in 0..<5 {
                let answers = try Self.exchange(
                    world.socket,
                    [Self.get("/healthz", last: true), Self.get("/v1/token?profile=\(profile)&format=text")])
                #expect(answers.map(\.status) == [200], "round \(round): \(answers.map(\.head))")
            }
            // Five tokens on one keep-alive connection, all from the fast path (in the rounds above
            // the router answered this process's tokens, each behind a request it held): the
            // first is logged at once with the peer, the other four are counted (until the stop).
            let fd = try AgentSocket.connect(world.socket)
            let burst = (0..<5).map { _ in Self.get("/v1/token?profile=\(profile)&format=text") }.joined()
                + Self.get("/healthz", last: true)
            let before = Self.servedLines(world).count
            _ = Array(burst.utf8).withUnsafeBytes { send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            let read = readAll(fd)
            close(fd)
            #expect(Self.parse(Array(read.text.utf8)).filter { $0.status == 200 }.count == 6)
            let lines = Array(Self.servedLines(world).dropFirst(before))
            #expect(lines.map { $0["count"] } == ["1"], "\(lines)")
            for line in lines {
                #expect(line["profile"] == profile)
                #expect(line["peer_pid"] == String(getpid()), "\(line)")
                #expect(line["peer_uid"] == String(getuid()))
                #expect(line["peer_exe"].map { !$0.isEmpty && $0 != "unknown" } == true, "\(line)")
            }
        }
    }

    /// A script that opens a connection per token (as `rc-agent token` does): hundreds of fresh
    /// connections the fast path alone answers, some closed by the agent (`Connection: close`),
    /// some by the client; then, on one connection, a fast-path answer, a request only the router
    /// answers, and the fast path again; then a graceful stop with connections of each kind idle.
    /// Every answer comes, the stop ends every connection, and the audit names every peer: one
    /// line per process and profile at its first token, the count of the rest at the stop.
    @Test func freshConnectionsThenTheRouterOnOneConnectionThenAGracefulStop() async throws {
        try await AgentWorld.run { world in
            try await world.start()
            let profile = world.profile
            #expect(try await world.token().status == 200)  // cold: fetched through the router
            let tokenRequest = Self.get("/v1/token?profile=\(profile)&format=text")
            let token = try #require(try await world.token("&format=text").body.split(separator: "\n").first)
            world.sandbox.leaks.watch(String(token))
            // Other processes (curl; the one above too): a line each at once.
            for _ in 0..<3 { #expect(try await world.token().status == 200) }
            let fresh = 300
            for index in 0..<fresh {
                if index % 2 == 0 {
                    let answers = try Self.exchange(world.socket, [Self.get("/v1/token?profile=\(profile)&format=text", last: true)])
                    #expect(answers.map(\.body) == [token + "\n"], "connection \(index)")
                } else {
                    let fd = try AgentSocket.connect(world.socket)
                    let answer = try Self.ask(fd, tokenRequest)
                    close(fd)
                    #expect(answer.status == 200 && answer.body == token + "\n", "connection \(index)")
                }
            }
            // One connection: fast path, router, fast path, each asked after the previous answer.
            let mixed = try AgentSocket.connect(world.socket)
            defer { close(mixed) }
            #expect(try Self.ask(mixed, tokenRequest).body == token + "\n")
            let status = try Self.ask(mixed, Self.get("/v1/status"))
            #expect(status.status == 200 && status.body.contains(#""profiles":"#), "\(status.head)")
            #expect(try Self.ask(mixed, tokenRequest).body == token + "\n")
            // Idle connections: one the fast path alone served, one the router alone served.
            let fastOnly = try AgentSocket.connect(world.socket)
            defer { close(fastOnly) }
            #expect(try Self.ask(fastOnly, tokenRequest).body == token + "\n")
            let routerOnly = try AgentSocket.connect(world.socket)
            defer { close(routerOnly) }
            #expect(try Self.ask(routerOnly, Self.get("/healthz")).body == "ok\n")
            let before = Self.servedLines(world)
            let mine = { (lines: [[String: String]]) in lines.filter { $0["peer_pid"] == String(getpid()) } }
            #expect(mine(before).map { $0["count"] } == ["1"], "\(mine(before))")
            let others = before.filter { $0["count"] == "1" && $0["peer_pid"] != String(getpid()) }
            #expect(Set(others.compactMap { $0["peer_pid"] }).count == 4, "\(before)")

            let agents = RunningAgents.pids(mentioning: world.sandbox.root)
            #expect(!agents.isEmpty)
            let stop = try await world.rcAgent(["stop"])
            #expect(stop.status == 0, "\(stop)")
            // The counts are written as the agent ends.
            #expect(await RunningAgents.waitUntilGone(agents))
            for (name, fd) in [("mixed", mixed), ("fast path only", fastOnly), ("router only", routerOnly)] {
                let rest = readAll(fd)
                #expect(rest.ending == .closed && rest.text.isEmpty, "\(name): \(rest)")
            }
            let after = mine(Self.servedLines(world))
            let counts = after.compactMap { $0["count"].flatMap { Int($0) } }
            #expect(counts.first == 1 && counts.count == after.count, "\(after)")
            #expect(counts.reduce(0, +) == fresh + 3, "\(after)")
            for line in after {
                #expect(line["profile"] == profile && line["peer_uid"] == String(getuid()), "\(line)")
                #expect(line["peer_exe"].map { !$0.isEmpty && $0 != "unknown" } == true, "\(line)")
            }
        }
    }

    /// Sends `request` on the open connection `fd` and reads its one answer.
    static func ask(_ fd: CInt, _ request: String) throws -> RawResponse {
        let bytes = Array(request.utf8)
        #expect(send(fd, bytes, bytes.count, Int32(MSG_NOSIGNAL)) == bytes.count)
        var limit = timeval(tv_sec: 10, tv_usec: 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &limit, socklen_t(MemoryLayout<timeval>.size))
        var data: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 4096)
        while true {
            if let answer = parse(data).first, data.count >= answer.head.utf8.count + 4 + answer.body.utf8.count,
                answer.body.utf8.count == Int(answer.header("Content-Length") ?? "0")
            {
                return answer
            }
            let count = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            if count < 0 && errno == EINTR { continue }
            guard count > 0 else { throw SocketSetupError("no complete answer: \(String(decoding: data, as: UTF8.self))") }
            data += buffer[0..<count]
        }
    }

    /// After `DELETE /v1/token`, logout, or a reload that removed the profile, no request gets the
    /// old token — asked on a fresh connection right after the operation's answer.
    @Test func noOldTokenAfterDeleteLogoutOrReload() async throws {
        try await AgentWorld.run { world in
            await world.state.setReuseLiveToken(false)
            try await world.start()
            for round in 0..<3 {
                let old = try #require(try await world.token("&format=text").body.split(separator: "\n").first)
                #expect(try await world.token("&format=text").body == old + "\n", "the fast path serves the held token")
                let forget = try await world.curl("/v1/token?profile=\(world.profile)", method: "DELETE")
                #expect(forget.status == 200, "\(forget.run)")
                let fresh = try await world.token("&format=text")
                #expect(fresh.status == 200)
                #expect(!fresh.body.hasPrefix(old), "round \(round): the forgotten token was served")
            }
            let requestsBefore = await world.state.tokenRequestCount
            #expect(try await world.token().status == 200)
            #expect(await world.state.tokenRequestCount == requestsBefore)

            // A reload after the profile left the config: unknown at once.
            let configPath = world.sandbox.configPath
            let config = try String(contentsOfFile: configPath, encoding: .utf8)
            try config.replacingOccurrences(of: "[profiles.\(world.profile)]", with: "[profiles.gone-\(world.profile)]")
                .write(toFile: configPath, atomically: true, encoding: .utf8)
            #expect(try await world.curl("/v1/reload", method: "POST").status == 200)
            let removed = try await world.token()
            #expect(removed.status == 404 && removed.errorCode == "unknown_profile", "\(removed.run)")
            try config.write(toFile: configPath, atomically: true, encoding: .utf8)
            #expect(try await world.curl("/v1/reload", method: "POST").status == 200)
            #expect(try await world.token().status == 200)

            let logout = try await world.rcAgent(["logout", "--profile", world.profile])
            #expect(logout.status == 0, "\(logout)")
            let after = try await world.token()
            #expect(after.status == 404, "\(after.run)")
            #expect(after.json?["access_token"] == nil)
        }
    }

    /// A 401 at the token endpoint latches `credentials_rejected`: the fast path stops answering
    /// (the router's own lines follow, no count), and no request reaches the tenant again.
    @Test func theRejectedLatchIsNeverBypassed() async throws {
        try await AgentWorld.run { world in
            try await world.start()
            #expect(try await world.token().status == 200)
            #expect(try await world.token().status == 200)
            let newSecret = "reset-" + UUID().uuidString
            world.sandbox.leaks.watch(newSecret)
            await world.state.resetSecret(clientID: world.session.clientID, newSecret: newSecret)
            let refresh = try await world.curl("/v1/token/refresh?profile=\(world.profile)", method: "POST")
            #expect(refresh.status == 502 && refresh.errorCode == "credentials_rejected", "\(refresh.run)")
            let latchedAt = await world.state.tokenRequestCount
            let linesBefore = Self.servedLines(world).count
            for _ in 0..<10 {
                let reply = try await world.token()
                #expect(reply.status == 200, "the router serves the still-valid token: \(reply.run)")
            }
            #expect(await world.state.tokenRequestCount == latchedAt)
            let after = Array(Self.servedLines(world).dropFirst(linesBefore))
            #expect(after.count == 10 && after.allSatisfy { $0["count"] == nil }, "\(after)")
        }
    }
}
