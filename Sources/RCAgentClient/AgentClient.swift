import FoundationEssentials
import RCAgentCore

#if canImport(Glibc)
import Glibc
#endif

/// The client side of the socket API, used by `token`, `exec`, `status`, `stop` (and later `api`).
///
/// One request per connection (`Connection: close`), blocking I/O on a thread of its own, bounded
/// by `timeout`. Every connection goes through ``AgentSocket/connectToOwnAgent(_:)``: a socket
/// that is another user's is refused before a byte is sent (``UntrustedAgentError``, exit 3).
/// Every other failure is an ``AgentError``: `agent_unreachable` when nothing answers, otherwise
/// the agent's own JSON error with its HTTP status.
public struct AgentClient: Sendable {
    public let socketPath: String
    /// Seconds a request may take (a token request may wait for the tenant).
    public let timeout: Double

    public init(socketPath: String, timeout: Double = 90) {
        self.socketPath = socketPath
        self.timeout = timeout
    }

    /// `GET /v1/token`: a token with at least `minValid` seconds left (the agent's default when nil).
    public func token(profile: String, minValid: Int? = nil) async throws -> TokenResponse {
        let profile = try ProfileName.validated(profile)
        let query = "profile=\(profile)" + (minValid.map { "&min_valid=\($0)" } ?? "")
        return try decode(TokenResponse.self, from: try await send("GET", "/v1/token?\(query)"))
    }

    /// ``token(profile:minValid:)`` (or ``refresh(profile:)`` when `refresh`) from an agent that
    /// listens on the socket, for the profile named or else the agent's default profile; nil when
    /// nothing can be connected to there (no socket, connection refused), so the caller can start one.
    public func tokenIfListening(profile: String?, minValid: Int?, refresh: Bool) async throws -> TokenResponse? {
        let (method, target) = try Self.tokenRequest(profile: profile, minValid: minValid, refresh: refresh)
        guard let reply = try await send(method, target, nilWhenNotListening: true) else { return nil }
        return try decode(TokenResponse.self, from: reply)
    }

    /// ``tokenIfListening(profile:minValid:refresh:)`` without `min_valid` or refresh, on the
    /// calling thread, which it blocks: for a process's main thread before anything else runs (a
    /// bare `rc-agent token`), where starting another thread costs more than the request.
    public func tokenIfListeningBlocking(profile: String?) throws -> TokenResponse? {
        let (method, target) = try Self.tokenRequest(profile: profile, minValid: nil, refresh: false)
        do {
            return try decode(TokenResponse.self, from: try Self.reply(path: socketPath, method: method, target: target, timeout: timeout))
        } catch is NotListening {
            return nil
        }
    }

    /// The method and target of a token request.
    private static func tokenRequest(profile: String?, minValid: Int?, refresh: Bool) throws -> (String, String) {
        var query = try profile.map { ["profile=\(try ProfileName.validated($0))"] } ?? []
        if !refresh, let minValid { query.append("min_valid=\(minValid)") }
        let path = (refresh ? "/v1/token/refresh" : "/v1/token") + (query.isEmpty ? "" : "?" + query.joined(separator: "&"))
        return (refresh ? "POST" : "GET", path)
    }

    /// `POST /v1/token/refresh`: a token fetched now (after a downstream 401).
    public func refresh(profile: String) async throws -> TokenResponse {
        let profile = try ProfileName.validated(profile)
        return try decode(TokenResponse.self, from: try await send("POST", "/v1/token/refresh?profile=\(profile)"))
    }

    /// `DELETE /v1/token`: the agent forgets the profile's token and failure state (after login,
    /// rotate, logout).
    public func forget(profile: String) async throws {
        let profile = try ProfileName.validated(profile)
        _ = try await send("DELETE", "/v1/token?profile=\(profile)")
    }

    /// `GET /v1/status`.
    public func status() async throws -> AgentStatus {
        try decode(AgentStatus.self, from: try await send("GET", "/v1/status"))
    }

    /// `POST /v1/reload`: the agent re-reads the config file (as on SIGHUP).
    public func reload() async throws {
        _ = try await send("POST", "/v1/reload")
    }

    /// `POST /v1/shutdown`: asks the agent to exit (it answers first).
    public func shutdown() async throws {
        _ = try await send("POST", "/v1/shutdown")
    }

    /// True when an agent answers `GET /healthz` on the socket. Throws ``UntrustedAgentError``
    /// when the socket is another user's (never "not alive": that would start a second agent).
    public func isAlive() async throws(UntrustedAgentError) -> Bool {
        let quick = AgentClient(socketPath: socketPath, timeout: min(timeout, 2))
        do {
            return try await quick.send("GET", "/healthz").status == 200
        } catch let refusal as UntrustedAgentError {
            throw refusal
        } catch {
            return false
        }
    }

    // MARK: HTTP over the socket

    struct Reply: Sendable {
        var status: Int
        var body: [UInt8]
    }

    private func decode<T: Decodable>(_ type: T.Type, from reply: Reply) throws -> T {
        do {
            return try JSONDecoder().decode(type, from: Data(reply.body))
        } catch {
            throw AgentError(
                .badResponse, message: "the agent on \(socketPath) sent an answer rc-agent does not understand",
                hint: "is it the same version? (`rc-agent stop`, then try again)")
        }
    }

    /// Sends a body-less request and returns a 2xx reply; a non-2xx one becomes its ``AgentError``.
    func send(_ method: String, _ target: String) async throws -> Reply {
        guard let reply = try await send(method, target, nilWhenNotListening: false) else {
            throw AgentError.unreachable(socket: socketPath, detail: "nothing is listening")
        }
        return reply
    }

    /// ``send(_:_:)``, or nil when `nilWhenNotListening` and the socket cannot be connected to.
    private func send(_ method: String, _ target: String, nilWhenNotListening: Bool) async throws -> Reply? {
        let path = socketPath
        let timeout = timeout
        do {
            return try await withCheckedThrowingContinuation { (continuation: CheckedContinuation<Reply, any Error>) in
                // Blocking socket calls, so they run on a thread of their own rather than the cooperative pool.
                DetachedThread.run {
                    continuation.resume(with: Result { try Self.reply(path: path, method: method, target: target, timeout: timeout) })
                }
            }
        } catch let failure as NotListening {
            if nilWhenNotListening { return nil }
            throw failure.error
        }
    }

    /// One exchange, blocking: a 2xx reply, else the reply's error (``NotListening`` when nothing
    /// could be connected to).
    private static func reply(path: String, method: String, target: String, timeout: Double) throws -> Reply {
        let reply = try exchange(path: path, method: method, target: target, timeout: timeout)
        guard (200..<300).contains(reply.status) else { throw error(from: reply) }
        return reply
    }

    private static func error(from reply: Reply) -> AgentError {
        struct Document: Decodable { let error: ErrorInfo }
        if let document = try? JSONDecoder().decode(Document.self, from: Data(reply.body)) {
            return AgentError(received: document.error, httpStatus: reply.status)
        }
        return AgentError(
            ErrorCode.badResponse.answered(with: reply.status),
            message: "the agent answered HTTP \(reply.status) without an error document")
    }

    private static func exchange(path: String, method: String, target: String, timeout: Double) throws -> Reply {
        let fd: CInt
        do {
            fd = try AgentSocket.connectToOwnAgent(path)
        } catch let error as SocketSetupError {
            throw NotListening(error: AgentError.unreachable(socket: path, detail: error.message))
        }
        defer { close(fd) }
        var limit = timeval(tv_sec: Int(timeout), tv_usec: Int((timeout - timeout.rounded(.down)) * 1_000_000))
        setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &limit, socklen_t(MemoryLayout<timeval>.size))
        setsockopt(fd, SOL_SOCKET, SO_SNDTIMEO, &limit, socklen_t(MemoryLayout<timeval>.size))

        let request = Array(
            ("\(method) \(target) HTTP/1.1\r\nHost: localhost\r\nUser-Agent: \(RCAgentVersion.userAgent)\r\n"
                + "Accept: application/json\r\nConnection: close\r\nContent-Length: 0\r\n\r\n").utf8)
        var sent = 0
        while sent < request.count {
            let count = request[sent...].withUnsafeBytes { Glibc.send(fd, $0.baseAddress, $0.count, Int32(MSG_NOSIGNAL)) }
            guard count > 0 else { throw failure(path, "sending the request failed: \(String(cString: strerror(errno)))") }
            sent += count
        }

        let maximum = 1 << 20
        var received: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 16 * 1024)
        while received.count <= maximum {
            let count = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
            if count == 0 { break }
            guard count > 0 else {
                let reason = errno == EAGAIN || errno == EWOULDBLOCK
                    ? "no answer within \(Int(timeout)) s" : String(cString: strerror(errno))
                throw failure(path, reason)
            }
            received += buffer[0..<count]
            if let reply = parse(received) { return reply }
        }
        guard let reply = parse(received, complete: true) else {
            throw failure(path, "the answer was cut short or too large")
        }
        return reply
    }

    /// The socket could not be connected to: no agent there (as opposed to one that failed to answer).
    private struct NotListening: Error {
        let error: AgentError
    }

    private static func failure(_ path: String, _ detail: String) -> AgentError {
        AgentError.unreachable(socket: path, detail: detail)
    }

    /// Parses a complete HTTP/1.1 response (Content-Length, or read to EOF when `complete`).
    static func parse(_ bytes: [UInt8], complete: Bool = false) -> Reply? {
        let separator: [UInt8] = [13, 10, 13, 10]
        guard bytes.count >= 4,
            let headEnd = (0...(bytes.count - 4)).first(where: { bytes[$0..<($0 + 4)].elementsEqual(separator) })
        else { return nil }
        let head = String(decoding: bytes[0..<headEnd], as: UTF8.self)
        let lines = head.components(separatedBy: "\r\n")
        let statusParts = lines.first?.split(separator: " ") ?? []
        guard statusParts.count >= 2, statusParts[0].hasPrefix("HTTP/1."), let status = Int(statusParts[1]) else {
            return complete ? Reply(status: 0, body: []) : nil
        }
        var length: Int?
        for line in lines.dropFirst() {
            let pair = line.split(separator: ":", maxSplits: 1)
            if pair.count == 2, pair[0].trimmingBlanks().lowercased() == "content-length" {
                length = Int(pair[1].trimmingBlanks())
            }
        }
        let body = Array(bytes[(headEnd + 4)...])
        if let length {
            guard body.count >= length else { return nil }
            return Reply(status: status, body: Array(body[0..<length]))
        }
        return complete ? Reply(status: status, body: body) : nil
    }
}

extension AgentClient: AgentTokenSource {}
