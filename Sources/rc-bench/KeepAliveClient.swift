import Foundation
import Histogram
import NIOCore
import NIOHTTP1
import NIOPosix

/// One request of a connection's repeating script; only `timed` ones are counted and recorded.
struct Exchange: Sendable {
    var method: HTTPMethod
    var uri: String
    var timed: Bool
}

/// What one connection (or, merged, a whole run) saw.
struct ConnectionResult: Sendable {
    /// Latency of each timed exchange, nanoseconds.
    var histogram = Histogram<UInt64>(highestTrackableValue: 120_000_000_000, numberOfSignificantValueDigits: .three)
    var statuses: [Int: Int] = [:]
    /// Timed exchanges that got no answer (the connection failed or closed first).
    var unanswered = 0
    /// Connections that could not be opened.
    var connectFailures = 0
    var tokens: Set<String> = []

    mutating func merge(_ other: ConnectionResult) {
        histogram.add(other.histogram)
        statuses.merge(other.statuses, uniquingKeysWith: +)
        unanswered += other.unanswered
        connectFailures += other.connectFailures
        tokens.formUnion(other.tokens)
    }
}

/// A run's time limit, shared by its connections.
final class DeadlineBox: @unchecked Sendable {
    private let lock = NSLock()
    private var at: UInt64 = 0
    func set(_ nanoseconds: UInt64) { lock.withLock { at = nanoseconds } }
    var passed: Bool {
        let at = lock.withLock { self.at }
        return at > 0 && DispatchTime.now().uptimeNanoseconds > at
    }
}

/// Sent to every connection's pipeline to start its script (so all start together).
struct StartEvent: Sendable {}

/// Runs a script of requests over one keep-alive connection, one at a time, on the event loop.
final class KeepAliveClient: ChannelInboundHandler, @unchecked Sendable {
    typealias InboundIn = HTTPClientResponsePart
    typealias OutboundOut = HTTPClientRequestPart

    private let script: [Exchange]
    private var remaining: Int
    private var index = 0
    private var result = ConnectionResult()
    private let done: EventLoopPromise<ConnectionResult>
    private let collectTokens: Bool
    private var started: UInt64 = 0
    private var status = 0
    private var body: [UInt8] = []
    private var finished = false
    /// `DispatchTime` nanoseconds after which no new request is sent (0: none).
    private let deadline: DeadlineBox

    init(
        script: [Exchange], requests: Int, collectTokens: Bool, deadline: DeadlineBox = DeadlineBox(),
        done: EventLoopPromise<ConnectionResult>
    ) {
        self.deadline = deadline
        self.script = script
        self.remaining = requests
        self.collectTokens = collectTokens
        self.done = done
    }

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        guard event is StartEvent else { return context.fireUserInboundEventTriggered(event) }
        if remaining > 0 { send(context) } else { finish(context) }
    }

    private func send(_ context: ChannelHandlerContext) {
        let exchange = script[index % script.count]
        var head = HTTPRequestHead(version: .http1_1, method: exchange.method, uri: exchange.uri)
        head.headers.add(name: "Host", value: "localhost")
        if exchange.method != .GET { head.headers.add(name: "Content-Length", value: "0") }
        started = DispatchTime.now().uptimeNanoseconds
        context.write(wrapOutboundOut(.head(head)), promise: nil)
        context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: nil)
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let head):
            status = Int(head.status.code)
            body.removeAll(keepingCapacity: true)
        case .body(var buffer):
            if collectTokens { body += buffer.readBytes(length: buffer.readableBytes) ?? [] }
        case .end:
            let elapsed = DispatchTime.now().uptimeNanoseconds &- started
            let exchange = script[index % script.count]
            if exchange.timed {
                _ = result.histogram.record(max(1, elapsed))
                result.statuses[status, default: 0] += 1
            }
            if collectTokens, let token = Self.token(in: body) { result.tokens.insert(token) }
            index += 1
            remaining -= 1
            if deadline.passed { remaining = 0 }
            if remaining > 0 { send(context) } else { finish(context) }
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        if !finished {
            // Whatever was left never got an answer.
            let timedShare = script.filter(\.timed).count
            result.unanswered += (remaining * timedShare + script.count - 1) / script.count
            remaining = 0
            finish(context)
        }
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        context.close(promise: nil)
    }

    private func finish(_ context: ChannelHandlerContext) {
        guard !finished else { return }
        finished = true
        done.succeed(result)
        context.close(promise: nil)
    }

    /// The value of `"access_token":"…"` in a JSON body.
    static func token(in body: [UInt8]) -> String? {
        let key = Array(#""access_token":""#.utf8)
        guard body.count > key.count else { return nil }
        var i = 0
        while i + key.count <= body.count {
            if body[i] == key[0], Array(body[i..<(i + key.count)]) == key {
                let start = i + key.count
                guard let end = body[start...].firstIndex(of: UInt8(ascii: "\"")) else { return nil }
                return String(decoding: body[start..<end], as: UTF8.self)
            }
            i += 1
        }
        return nil
    }
}

/// A whole run: connect every connection first, start them together, wait for all.
struct LoadRun: Sendable {
    var merged = ConnectionResult()
    var seconds: Double = 0

    static func run(
        socket: String, group: MultiThreadedEventLoopGroup, connections: Int, requests: Int, script: [Exchange],
        collectTokens: Bool, maxSeconds: Double = 0
    ) async throws -> LoadRun {
        // Set when the connections start (below); read by the handlers on their loops after that.
        let deadlineBox = DeadlineBox()
        var channels: [(any Channel, EventLoopFuture<ConnectionResult>)] = []
        var run = LoadRun()
        for n in 0..<connections {
            let share = requests / connections + (n < requests % connections ? 1 : 0)
            let loop = group.next()
            let promise = loop.makePromise(of: ConnectionResult.self)
            let handler = KeepAliveClient(
                script: script, requests: share, collectTokens: collectTokens, deadline: deadlineBox, done: promise)
            let bootstrap = ClientBootstrap(group: loop).channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHTTPClientHandlers()
                    try channel.pipeline.syncOperations.addHandler(handler)
                }
            }
            // A burst beyond the listen backlog gets EAGAIN on a Unix socket: retry a while.
            var channel: (any Channel)?
            for attempt in 0..<200 {
                do {
                    channel = try await bootstrap.connect(unixDomainSocketPath: socket).get()
                    break
                } catch {
                    if attempt == 199 { break }
                    try await Task.sleep(nanoseconds: 5_000_000)
                }
            }
            guard let channel else {
                promise.fail(ChannelError.ioOnClosedChannel)
                run.merged.connectFailures += 1
                run.merged.unanswered += share * script.filter(\.timed).count / script.count
                continue
            }
            channels.append((channel, promise.futureResult))
        }
        let start = DispatchTime.now().uptimeNanoseconds
        if maxSeconds > 0 { deadlineBox.set(start + UInt64(maxSeconds * 1e9)) }
        for (channel, _) in channels { channel.pipeline.fireUserInboundEventTriggered(StartEvent()) }
        for (_, result) in channels {
            if let result = try? await result.get() { run.merged.merge(result) }
        }
        run.seconds = Double(DispatchTime.now().uptimeNanoseconds - start) / 1e9
        return run
    }

    /// Timed requests answered 200.
    var ok: Int { merged.statuses[200] ?? 0 }
    var total: Int { merged.statuses.values.reduce(0, +) + merged.unanswered }
    var errors: Int { total - ok }

    func summary(label: String, extra: String) -> String {
        let h = merged.histogram
        func us(_ p: Double) -> String { h.totalCount == 0 ? "-" : String(format: "%.1f", Double(h.valueAtPercentile(p)) / 1000) }
        let statuses = merged.statuses.sorted { $0.key < $1.key }.map { "\($0.key):\($0.value)" }.joined(separator: ",")
        return "\(label) \(extra) requests=\(total) ok=\(ok) errors=\(errors) unanswered=\(merged.unanswered) "
            + "connect_failures=\(merged.connectFailures) seconds=\(String(format: "%.3f", seconds)) "
            + "rps=\(String(format: "%.0f", seconds > 0 ? Double(ok) / seconds : 0)) "
            + "p50_us=\(us(50)) p99_us=\(us(99)) p999_us=\(us(99.9)) max_us=\(us(100)) statuses=\(statuses.isEmpty ? "-" : statuses)"
    }

    /// Appends the distinct tokens seen, one a line, to `path` (the leak scan's list).
    func saveTokens(to path: String?) throws {
        guard let path, !merged.tokens.isEmpty else { return }
        let text = merged.tokens.sorted().joined(separator: "\n") + "\n"
        if !FileManager.default.fileExists(atPath: path) {
            _ = FileManager.default.createFile(atPath: path, contents: nil, attributes: [.posixPermissions: 0o600])
        }
        let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: path))
        defer { try? handle.close() }
        try handle.seekToEnd()
        try handle.write(contentsOf: Data(text.utf8))
    }
}
