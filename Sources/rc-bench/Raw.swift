import ArgumentParser
import Dispatch
import Foundation
import Histogram
import RCAgentCore

#if canImport(Glibc)
import Glibc
#endif

/// What is spoken on the socket: the agent's HTTP/1.1, or the SSH agent protocol.
enum Wire: String, ExpressibleByArgument, Sendable {
    /// `GET PATH HTTP/1.1` to rc-agent; an answer is complete at its Content-Length; 200 is success.
    case http
    /// `SSH_AGENTC_REQUEST_IDENTITIES` (11) to ssh-agent; success is `SSH_AGENT_IDENTITIES_ANSWER` (12).
    case ssh
}

/// How a client uses connections.
enum Connecting: String, ExpressibleByArgument, Sendable {
    /// One connection per client for the whole run, a request at a time (closed loop).
    case keepAlive = "keep-alive"
    /// Connect, ask, read the answer, close — for every request (a script calling `curl`, a shell
    /// function calling `ssh-add -l`).
    case fresh
}

/// The same closed-loop load against rc-agent or ssh-agent, with plain sockets and poll(2):
/// `write`, then `read` until the answer is complete, then the next question. The client is as cheap as a client
/// can be (no event loop, no parser beyond finding the end of the answer), so the two agents are
/// compared by what they cost, not by what the client does; both get the very same client.
struct Raw: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Closed-loop load with blocking sockets against rc-agent (HTTP) or ssh-agent (REQUEST_IDENTITIES).")

    @Option(help: "The agent's socket (rc-agent's, or ssh-agent's SSH_AUTH_SOCK).") var socket: String
    @Option(help: "Protocol: http (rc-agent) or ssh (ssh-agent).") var wire: Wire = .http
    @Option(help: "keep-alive, or fresh (a connection per request).") var connecting: Connecting = .keepAlive
    @Option(help: "Concurrent clients (a request in flight each; kept alive, a connection each).") var connections: Int = 1
    @Option(help: "Client threads the clients are spread over (each waits in poll(2)).") var threads: Int = 1
    @Option(help: "Stop after this many seconds.") var seconds: Double = 3
    @Option(help: "Stop after this many requests in all (0: only the time limit).") var requests: Int = 0
    @Option(help: "HTTP request target.") var path: String = "/v1/token"
    @Option(help: "HTTP Accept header (none when empty).") var accept: String = ""
    @Option(help: "First word of the result line.") var label: String = "raw"
    @Option(help: "Extra key=value text for the result line (e.g. round=2 target=rc-json).") var tag: String = ""

    func validate() throws {
        guard connections >= 1, connections <= 1024 else { throw ValidationError("--connections: 1…1024") }
        guard threads >= 1, threads <= connections else { throw ValidationError("--threads: 1…connections") }
        guard seconds > 0 else { throw ValidationError("--seconds must be positive") }
    }

    func run() throws {
        let question: [UInt8]
        switch wire {
        case .ssh:
            question = [0, 0, 0, 1, 11]
        case .http:
            let acceptLine = accept.isEmpty ? "" : "Accept: \(accept)\r\n"
            question = Array("GET \(path) HTTP/1.1\r\nHost: localhost\r\n\(acceptLine)\r\n".utf8)
        }
        let quotas = (0..<connections).map { n in
            requests == 0 ? Int.max : requests / connections + (n < requests % connections ? 1 : 0)
        }
        let perThread = (connections + threads - 1) / threads
        let clients = stride(from: 0, to: connections, by: perThread).map { first in
            RawClient(
                socket: socket, wire: wire, connecting: connecting, question: question,
                quotas: Array(quotas[first..<min(connections, first + perThread)]))
        }
        let start = Monotonic.now()
        let deadline = start + UInt64(seconds * 1e9)
        let finished = DispatchGroup()
        for client in clients {
            finished.enter()
            let thread = Thread {
                client.run(until: deadline)
                finished.leave()
            }
            thread.stackSize = 256 * 1024
            thread.start()
        }
        finished.wait()
        let elapsed = Double(Monotonic.now() - start) / 1e9
        var merged = RawResult()
        for client in clients { merged.merge(client.result) }
        print(merged.summary(label: label, extra: "\(tag) wire=\(wire.rawValue) connecting=\(connecting.rawValue) connections=\(connections)", seconds: elapsed))
    }
}

/// What the clients of a run saw.
struct RawResult {
    /// Latency of each answered request, nanoseconds (connect to close for fresh connections).
    var histogram = Histogram<UInt64>(highestTrackableValue: 60_000_000_000, numberOfSignificantValueDigits: .three)
    var ok = 0
    /// Answers that were not success (HTTP status other than 200, SSH message other than 12).
    var failed = 0
    /// Requests without an answer: connect refused, connection closed, short read.
    var broken = 0

    mutating func merge(_ other: RawResult) {
        histogram.add(other.histogram)
        ok += other.ok
        failed += other.failed
        broken += other.broken
    }

    /// The percentiles `make bench` plots.
    static let percentiles: [Double] = [50, 75, 90, 95, 99, 99.5, 99.9, 99.95, 99.99, 100]

    func summary(label: String, extra: String, seconds: Double) -> String {
        func us(_ p: Double) -> String {
            histogram.totalCount == 0 ? "-" : String(format: "%.1f", Double(histogram.valueAtPercentile(p)) / 1000)
        }
        let curve = Self.percentiles.map { "\($0 == 100 ? "100" : String($0)):\(us($0))" }.joined(separator: ",")
        return "\(label) \(extra) requests=\(ok + failed + broken) ok=\(ok) failed=\(failed) broken=\(broken) "
            + "seconds=\(String(format: "%.3f", seconds)) rps=\(String(format: "%.0f", seconds > 0 ? Double(ok) / seconds : 0)) "
            + "p50_us=\(us(50)) p99_us=\(us(99)) p999_us=\(us(99.9)) max_us=\(us(100)) curve=\(curve)"
    }
}

enum Monotonic {
    static func now() -> UInt64 {
        var spec = timespec()
        clock_gettime(CLOCK_MONOTONIC, &spec)
        return UInt64(spec.tv_sec) * 1_000_000_000 + UInt64(spec.tv_nsec)
    }
}

/// One thread's share of the clients: each client has its own connection and one request in
/// flight; the thread waits in poll(2) for whichever answer comes next (as a one-thread event loop
/// would, so 8 clients on 2 cores do not become 8 threads taking turns). Read only after the
/// thread has finished.
final class RawClient: @unchecked Sendable {
    private let socket: String
    private let wire: Wire
    private let connecting: Connecting
    private let question: [UInt8]
    private var slots: [Slot]
    private var buffer = [UInt8](repeating: 0, count: 64 * 1024)
    private(set) var result = RawResult()

    private struct Slot {
        var fd: CInt = -1
        var quota: Int
        var started: UInt64 = 0
        var answer: [UInt8] = []
    }

    init(socket: String, wire: Wire, connecting: Connecting, question: [UInt8], quotas: [Int]) {
        self.socket = socket
        self.wire = wire
        self.connecting = connecting
        self.question = question
        self.slots = quotas.map { Slot(quota: $0) }
    }

    func run(until deadline: UInt64) {
        var polled = [pollfd](repeating: pollfd(fd: -1, events: Int16(POLLIN), revents: 0), count: slots.count)
        for index in slots.indices { ask(index, deadline: deadline) }
        while true {
            var waiting = 0
            for index in slots.indices {
                polled[index].fd = slots[index].fd
                polled[index].revents = 0
                if slots[index].fd >= 0 { waiting += 1 }
            }
            guard waiting > 0 else { break }
            let ready = poll(&polled, nfds_t(polled.count), 1000)
            if ready < 0 && errno != EINTR { break }
            for index in slots.indices where polled[index].fd >= 0 && polled[index].revents != 0 {
                readReady(index, deadline: deadline)
            }
        }
    }

    /// Sends the slot's next question (connecting first when it has no connection), unless its
    /// quota or the time is up.
    private func ask(_ index: Int, deadline: UInt64) {
        while slots[index].quota > 0 {
            let now = Monotonic.now()
            guard now < deadline else { break }
            slots[index].quota -= 1
            slots[index].started = now
            if slots[index].fd < 0 {
                slots[index].fd = (try? AgentSocket.connect(socket)) ?? -1
                guard slots[index].fd >= 0 else {
                    result.broken += 1
                    continue
                }
            }
            if Self.writeAll(slots[index].fd, question) { return }
            result.broken += 1
            drop(index)
        }
        drop(index)
    }

    private func drop(_ index: Int) {
        if slots[index].fd >= 0 { close(slots[index].fd) }
        slots[index].fd = -1
    }

    private func readReady(_ index: Int, deadline: UInt64) {
        let fd = slots[index].fd
        let n = buffer.withUnsafeMutableBytes { read(fd, $0.baseAddress!, $0.count) }
        if n < 0 && errno == EINTR { return }
        guard n > 0 else {
            result.broken += 1
            drop(index)
            return ask(index, deadline: deadline)
        }
        slots[index].answer += buffer[0..<n]
        guard let success = Self.complete(slots[index].answer, wire: wire) else { return }
        if connecting == .fresh { drop(index) }
        _ = result.histogram.record(max(1, Monotonic.now() - slots[index].started))
        if success { result.ok += 1 } else { result.failed += 1 }
        slots[index].answer.removeAll(keepingCapacity: true)
        ask(index, deadline: deadline)
    }

    /// nil while the answer is incomplete; then true for success, false for a refusal.
    static func complete(_ answer: [UInt8], wire: Wire) -> Bool? {
        switch wire {
        case .ssh:
            guard answer.count >= 4 else { return nil }
            let length = Int(answer[0]) << 24 | Int(answer[1]) << 16 | Int(answer[2]) << 8 | Int(answer[3])
            guard answer.count >= 4 + length else { return nil }
            return length > 0 && answer[4] == 12
        case .http:
            guard let (headEnd, bodyLength) = httpFrame(answer),
                answer.count >= headEnd + bodyLength
            else { return nil }
            // "HTTP/1.1 200"
            return answer.count > 12 && answer[9] == 0x32 && answer[10] == 0x30 && answer[11] == 0x30
        }
    }

    static func writeAll(_ fd: CInt, _ bytes: [UInt8]) -> Bool {
        bytes.withUnsafeBytes { raw in
            var offset = 0
            while offset < raw.count {
                let n = write(fd, raw.baseAddress! + offset, raw.count - offset)
                if n < 0 && errno == EINTR { continue }
                guard n > 0 else { return false }
                offset += n
            }
            return true
        }
    }

    /// The end of the head (after CR LF CR LF) and the Content-Length, once the head is complete.
    static func httpFrame(_ bytes: [UInt8]) -> (Int, Int)? {
        let count = bytes.count
        guard count >= 4 else { return nil }
        var end = -1
        for i in 3..<count where bytes[i] == 10 && bytes[i - 1] == 13 && bytes[i - 2] == 10 && bytes[i - 3] == 13 {
            end = i + 1
            break
        }
        guard end > 0 else { return nil }
        let name = Array("content-length:".utf8)
        var i = 0
        while i + name.count < end {
            var matches = true
            for k in 0..<name.count where bytes[i + k] | 0x20 != name[k] {  // the name is lower case; `-` and `:` have 0x20 set
                matches = false
                break
            }
            if matches {
                var j = i + name.count
                while bytes[j] == 0x20 { j += 1 }
                var length = 0
                while bytes[j] >= 0x30 && bytes[j] <= 0x39 {
                    length = length * 10 + Int(bytes[j] - 0x30)
                    j += 1
                }
                return (end, length)
            }
            i += 1
        }
        return (end, 0)
    }
}
