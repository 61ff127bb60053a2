import Foundation
import Synchronization
import Testing

@testable import RCAgentCore
@testable import RCAgentDaemon
import RCAgentTestSupport

#if canImport(Glibc)
import Glibc
#endif

/// What the front door reads itself: only a complete, plain `GET /v1/token…` head; everything else
/// is left to NIO's parser and the router.
@Suite struct FrontDoorRequestTests {
    private func parse(_ text: String, limits: AgentServerLimits = AgentServerLimits())
        -> (TokenFastPath.Request, Int)?
    {
        Array(text.utf8).withUnsafeBytes { FrontDoorRequest.parse($0, limits: limits) }
    }

    @Test func aPlainTokenRequestIsRead() throws {
        let text = "GET /v1/token?profile=prod&format=text HTTP/1.1\r\nHost: localhost\r\nUser-Agent: curl/8\r\nAccept: */*\r\n\r\n"
        let (request, length) = try #require(parse(text))
        #expect(length == text.utf8.count)
        #expect(request.profile == "prod" && request.format == "text" && request.minValid == nil)
        #expect(request.accept == "*/*")
        #expect(!request.closes)
        let bare = try #require(parse("GET /v1/token HTTP/1.1\r\n\r\n"))
        #expect(bare.0.profile == nil && bare.0.format == nil && bare.0.accept == nil && bare.1 == 26)
    }

    /// Field names in any case, spaces around values, `Connection: close`, `Content-Length: 0`.
    @Test func fieldsAreReadAsNIOReadsThem() throws {
        let text = "GET /v1/token HTTP/1.1\r\nconnection: close\r\nACCEPT:\t text/plain  \r\ncontent-length: 0\r\n\r\n"
        let (request, _) = try #require(parse(text))
        #expect(request.closes)
        #expect(request.accept == "text/plain")
    }

    /// Two requests in one read: the first one's length, so the second is read after it.
    @Test func pipelinedRequestsAreReadOneAtATime() throws {
        let first = "GET /v1/token?profile=a HTTP/1.1\r\nHost: x\r\n\r\n"
        let second = "GET /healthz HTTP/1.1\r\nHost: x\r\n\r\n"
        let (request, length) = try #require(parse(first + second))
        #expect(length == first.utf8.count && request.profile == "a")
    }

    /// Anything else goes to NIO and the router, which answer it (or its error) as before.
    @Test(arguments: [
        "GET /v1/token HTTP/1.1\r\nHost: x\r\n",  // incomplete head
        "GET /v1/token HTTP/1.1\r\nHost: x\r\n\r",
        "GET /v1/token",
        "POST /v1/token HTTP/1.1\r\n\r\n",
        "get /v1/token HTTP/1.1\r\n\r\n",
        "GET /v1/token HTTP/1.0\r\n\r\n",
        "GET /v1/tokens HTTP/1.1\r\n\r\n",
        "GET /v1/status HTTP/1.1\r\n\r\n",
        "GET http://localhost/v1/token HTTP/1.1\r\n\r\n",
        "GET /v1/token?profile=%70rod HTTP/1.1\r\n\r\n",
        "GET /v1/token?profile=a&profile=b HTTP/1.1\r\n\r\n",
        "GET /v1/token?profile HTTP/1.1\r\n\r\n",
        "GET /v1/token?profile=a&other=1 HTTP/1.1\r\n\r\n",
        "GET /v1/token\u{7F} HTTP/1.1\r\n\r\n",
        "GET /v1/token HTTP/1.1\nHost: x\n\n",  // bare LF
        "GET /v1/token HTTP/1.1\r\nHost: x\r\n folded\r\n\r\n",  // obs-fold
        "GET /v1/token HTTP/1.1\r\nHost : x\r\n\r\n",
        "GET /v1/token HTTP/1.1\r\n: x\r\n\r\n",
        "GET /v1/token HTTP/1.1\r\nX-A: a\u{01}b\r\n\r\n",
        "GET /v1/token HTTP/1.1\r\nX-A: caf\u{E9}\r\n\r\n",
        "GET /v1/token HTTP/1.1\r\nHost: x\r\nHost: y\r\n\r\n",
        "GET /v1/token HTTP/1.1\r\nAccept: text/plain\r\nAccept: */*\r\n\r\n",
        "GET /v1/token HTTP/1.1\r\nConnection: close\r\nConnection: close\r\n\r\n",
        "GET /v1/token HTTP/1.1\r\nConnection: keep-alive\r\n\r\n",
        "GET /v1/token HTTP/1.1\r\nConnection: Close\r\n\r\n",
        "GET /v1/token HTTP/1.1\r\nContent-Length: 5\r\n\r\nhello",
        "GET /v1/token HTTP/1.1\r\nContent-Length: 0\r\nContent-Length: 0\r\n\r\n",
        "GET /v1/token HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n",
        "GET /v1/token HTTP/1.1\r\nExpect: 100-continue\r\n\r\n",
        "GET /v1/token HTTP/1.1\r\nUpgrade: h2c\r\n\r\n",
        "GET /v1/token HTTP/1.1\r\nProxy-Connection: close\r\n\r\n",
    ])
    func anythingElseIsLeftToTheRouter(_ text: String) {
        #expect(parse(text) == nil, "\(text.debugDescription)")
    }

    /// The header limits are the server's: a head NIO would refuse with 431 is never read here.
    @Test func headsOverTheLimitsAreLeftToTheRouter() {
        var limits = AgentServerLimits()
        limits.maximumHeaderCount = 3
        limits.maximumHeaderBytes = 64
        let three = "GET /v1/token HTTP/1.1\r\nA: 1\r\nB: 2\r\nC: 3\r\n\r\n"
        #expect(parse(three, limits: limits) != nil)
        #expect(parse("GET /v1/token HTTP/1.1\r\nA: 1\r\nB: 2\r\nC: 3\r\nD: 4\r\n\r\n", limits: limits) == nil)
        let long = "GET /v1/token HTTP/1.1\r\nX-Long: " + String(repeating: "a", count: 60) + "\r\n\r\n"
        #expect(parse(long, limits: limits) == nil)
        // The target counts too, as NIO counts it.
        let target = "GET /v1/token?profile=" + String(repeating: "a", count: 50) + " HTTP/1.1\r\nA: 1\r\n\r\n"
        #expect(parse(target, limits: limits) == nil)
    }
}

/// The front door on a real socket: what it hands on keeps its bytes and order, a client that
/// does not read gets every answer, and its connections count against the limit.
@Suite struct FrontDoorTests {
    private static let tokenRequest = "GET /v1/token?profile=default&format=text HTTP/1.1\r\nHost: x\r\n\r\n"

    /// A request that arrives in two writes is not the front door's (it reads one complete head at
    /// a time): NIO gets the first part with the rest, and its fast path answers with the same
    /// bytes as the front door does for the request in one write.
    @Test func aRequestSplitAcrossWritesIsAnsweredWithTheSameBytes() async throws {
        try await InProcessAgent.withAgent { agent, _, _ async throws in
            #expect(try await curl(agent.socket, "/v1/token?format=text").status == 200)  // cached from now on
            let (whole, split) = await onOwnThread {
                let whole = Self.exchange(agent.socket, [Self.tokenRequest])
                let split = Self.exchange(agent.socket, [String(Self.tokenRequest.prefix(30)), String(Self.tokenRequest.dropFirst(30))])
                return (whole, split)
            }
            #expect(whole.hasPrefix("HTTP/1.1 200 OK\r\n"), "\(whole.prefix(80))")
            #expect(whole.contains("Content-Type: text/plain; charset=utf-8\r\n"))
            #expect(split == whole, "\(split.prefix(200))\n---\n\(whole.prefix(200))")
        }
    }

    /// A client that sends thousands of requests in a row without reading: the answers fill the
    /// socket and wait, nothing is dropped or reordered, and a request only the router answers
    /// behind them still comes last.
    @Test func aClientThatDoesNotReadGetsEveryAnswerInOrder() async throws {
        try await InProcessAgent.withAgent { agent, _, _ async throws in
            #expect(try await curl(agent.socket, "/v1/token?format=text").status == 200)
            let count = 3000
            let json = "GET /v1/token?profile=default HTTP/1.1\r\nHost: x\r\n\r\n"
            let requests = (0..<count).map { $0 % 2 == 0 ? Self.tokenRequest : json }
                + ["GET /healthz HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n"]
            let answer = try await onOwnThread { Result { () throws -> String in
                let fd = try AgentSocket.connect(agent.socket)
                defer { close(fd) }
                let bytes = Array(requests.joined().utf8)
                // All of it before reading any: the agent's answers back up meanwhile.
                var sent = 0
                while sent < bytes.count {
                    let now = bytes[sent...].withUnsafeBytes { send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
                    guard now > 0 else { break }
                    sent += now
                }
                #expect(sent == bytes.count)
                let read = readAll(fd)
                #expect(read.ending == .closed, "\(read.ending)")
                return read.text
            } }.get()
            let types = answer.components(separatedBy: "Content-Type: ").dropFirst().map { $0.prefix(10) }
            #expect(types.count == count + 1, "\(types.count) answers")
            let expected = (0..<count).map { $0 % 2 == 0 ? "text/plain" : "applicatio" }
            #expect(Array(types.prefix(count)) == expected.map { Substring($0) })
            #expect(answer.hasSuffix("ok\n"), "\(answer.suffix(80))")
        }
    }

    /// `Connection: close`: the answer, then the connection ends; a request sent behind it is not
    /// answered.
    @Test func connectionCloseIsTheLastAnswer() async throws {
        try await InProcessAgent.withAgent { agent, _, _ async throws in
            #expect(try await curl(agent.socket, "/v1/token?format=text").status == 200)
            let closing = Self.tokenRequest.replacingOccurrences(of: "\r\n\r\n", with: "\r\nConnection: close\r\n\r\n")
            let (alone, followed) = await onOwnThread {
                (Self.exchange(agent.socket, [closing]), Self.exchange(agent.socket, [closing + Self.tokenRequest]))
            }
            #expect(alone.components(separatedBy: "HTTP/1.1 200").count == 2, "\(alone)")
            #expect(followed == alone)
        }
    }

    /// Connections the front door holds count against `maximumConnections` with NIO's: one more
    /// is refused with 503, and a place that frees up is taken again.
    @Test func theFrontDoorsConnectionsCountAgainstTheLimit() async throws {
        var limits = AgentServerLimits()
        limits.maximumConnections = 4
        try await InProcessAgent.withAgent(limits: limits) { agent, _, _ async throws in
            #expect(try await curl(agent.socket, "/v1/token?format=text").status == 200)
            let (held, refused, again) = try await onOwnThread { Result { () throws -> ([CInt], String, String) in
                // Each answered by the front door and left open (curl's connection above may take a
                // moment to be seen closed).
                let held = try (0..<4).map { _ in try Self.connectAnswered(agent.socket) }
                let refused = Self.exchange(agent.socket, [Self.tokenRequest])
                close(held[0])
                // The agent learns of the close at its next look at that connection.
                var again = ""
                for _ in 0..<100 {
                    again = Self.exchange(agent.socket, [Self.tokenRequest])
                    if again.hasPrefix("HTTP/1.1 200") { break }
                    usleep(20_000)
                }
                return (Array(held.dropFirst()), refused, again)
            } }.get()
            defer { held.forEach { close($0) } }
            #expect(refused.hasPrefix("HTTP/1.1 503"), "\(refused.prefix(120))")
            #expect(refused.contains(#""code":"too_many_connections""#), "\(refused)")
            #expect(again.hasPrefix("HTTP/1.1 200"), "\(again.prefix(120))")
        }
    }

    // MARK: Helpers

    /// Sends each of `writes` on a fresh connection (20 ms apart), closes the sending side, and
    /// reads until the agent closes.
    private static func exchange(_ socket: String, _ writes: [String]) -> String {
        guard let fd = try? AgentSocket.connect(socket) else { return "cannot connect" }
        defer { close(fd) }
        for (index, text) in writes.enumerated() {
            if index > 0 { usleep(20_000) }
            _ = Array(text.utf8).withUnsafeBytes { send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
        }
        shutdown(fd, Int32(SHUT_WR))
        return readAll(fd).text
    }

    /// A connection on which a token request was answered 200 (retried while the agent is full).
    private static func connectAnswered(_ socket: String) throws -> CInt {
        for _ in 0..<100 {
            let fd = try AgentSocket.connect(socket)
            if ask(fd, tokenRequest).hasPrefix("HTTP/1.1 200") { return fd }
            close(fd)
            usleep(20_000)
        }
        throw SocketSetupError("no connection was answered")
    }

    /// Sends `request` on `fd` and reads one answer (a text token: one read holds it).
    private static func ask(_ fd: CInt, _ request: String) -> String {
        _ = Array(request.utf8).withUnsafeBytes { send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
        var buffer = [UInt8](repeating: 0, count: 4096)
        let count = recv(fd, &buffer, buffer.count, 0)
        return String(decoding: buffer[0..<max(count, 0)], as: UTF8.self)
    }
}
