import ArgumentParser
import Foundation
import NIOCore
import NIOPosix

/// Bad input at the socket while a well-behaved client keeps fetching tokens: `count` generated
/// requests (random bytes, truncated and oversized request lines/headers/bodies, invalid UTF-8,
/// wrong methods, path traversal under /v1/proxy, smuggling-style framing, bad queries), each on
/// its own connection, plus `slowloris` connections that trickle a request head a byte a second.
struct BadInput: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Generated bad requests plus a good client.")
    @OptionGroup var target: SocketOptions
    @Option(help: "Generated bad requests.") var count: Int = 100_000
    @Option(help: "Bad requests in flight at once.") var concurrency: Int = 32
    @Option(help: "Slowloris connections (held for --slowloris-seconds).") var slowloris: Int = 50
    @Option(help: "How long a slowloris client trickles bytes.") var slowlorisSeconds: Int = 14
    @Option(help: "Generator seed (same seed, same requests).") var seed: UInt64 = 1
    @Option(help: "The agent's pid: its RSS is sampled during the run.") var pid: Int32?
    @Option(help: "The good client's request target.") var goodPath: String = "/v1/token?min_valid=1"

    func run() async throws {
        let group = target.group()
        let socket = target.socket
        let stop = ManagedFlag()
        let rss = RSSSampler(pid: pid)
        let sampler = Task { await rss.sample(until: stop) }
        let good = Task { await GoodClient.run(socket: socket, group: group, path: goodPath, until: stop) }
        let slow = Task {
            await withTaskGroup(of: RawOutcome.self) { tasks in
                for n in 0..<slowloris {
                    tasks.addTask {
                        let head = Array("GET /v1/token HTTP/1.1\r\nHost: localhost\r\nX-Slow-\(n): ".utf8)
                        let bytes = head + Array(repeating: UInt8(ascii: "a"), count: slowlorisSeconds)
                        return await RawExchange.perform(
                            socket: socket, group: group, chunks: bytes.map { [$0] }, gap: .seconds(1),
                            halfClose: false, wait: .seconds(2))
                    }
                }
                var closedByAgent = 0
                for await outcome in tasks where outcome.closedByPeer { closedByAgent += 1 }
                return closedByAgent
            }
        }
        var statuses: [Int: Int] = [:]
        var kinds: [String: Int] = [:]
        let start = Date()
        await withTaskGroup(of: [Int: Int].self) { tasks in
            for worker in 0..<concurrency {
                tasks.addTask {
                    var seen: [Int: Int] = [:]
                    for index in stride(from: worker, to: count, by: concurrency) {
                        let request = BadRequestGenerator(seed: seed).request(index)
                        let outcome = await RawExchange.perform(
                            socket: socket, group: group, chunks: [request.bytes], gap: .zero,
                            halfClose: request.halfClose, wait: .seconds(2))
                        seen[outcome.status, default: 0] += 1
                    }
                    return seen
                }
            }
            for await seen in tasks { statuses.merge(seen, uniquingKeysWith: +) }
        }
        for index in 0..<min(count, 10_000) { kinds[BadRequestGenerator(seed: seed).request(index).kind, default: 0] += 1 }
        let badSeconds = Date().timeIntervalSince(start)
        let closedSlow = await slow.value
        stop.set()
        let (goodOK, goodFailed) = await good.value
        let memory = await sampler.value
        try? await group.shutdownGracefully()
        let statusText = statuses.sorted { $0.key < $1.key }.map { "\($0.key):\($0.value)" }.joined(separator: ",")
        print(
            "badinput requests=\(count) seconds=\(String(format: "%.1f", badSeconds)) statuses=\(statusText) "
                + "internal_errors=\(statuses[500] ?? 0) slowloris=\(slowloris) slowloris_closed_by_agent=\(closedSlow) "
                + "good_ok=\(goodOK) good_failed=\(goodFailed) rss_start_kb=\(memory.start) rss_max_kb=\(memory.max) "
                + "rss_end_kb=\(memory.end) kinds(first 10k)=\(kinds.sorted { $0.key < $1.key }.map { "\($0.key):\($0.value)" }.joined(separator: ","))"
        )
    }
}

/// A flag one task sets and others poll.
final class ManagedFlag: @unchecked Sendable {
    private let lock = NSLock()
    private var value = false
    func set() { lock.withLock { value = true } }
    var isSet: Bool { lock.withLock { value } }
}

/// VmRSS of a process, sampled every 250 ms.
struct RSSSampler: Sendable {
    let pid: Int32?

    static func rssKB(_ pid: Int32) -> Int {
        guard let text = try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8),
            let line = text.split(separator: "\n").first(where: { $0.hasPrefix("VmRSS:") })
        else { return 0 }
        return Int(line.split(separator: " ").dropFirst().first ?? "0") ?? 0
    }

    func sample(until stop: ManagedFlag) async -> (start: Int, max: Int, end: Int) {
        guard let pid else { return (0, 0, 0) }
        let first = Self.rssKB(pid)
        var peak = first
        var last = first
        while !stop.isSet {
            last = Self.rssKB(pid)
            peak = max(peak, last)
            try? await Task.sleep(nanoseconds: 250_000_000)
        }
        return (first, peak, Self.rssKB(pid))
    }
}

/// The well-behaved client: a keep-alive connection fetching a token every 5 ms; any answer but
/// 200, or a connection lost, is a failure (it reconnects and goes on).
enum GoodClient {
    static func run(socket: String, group: any EventLoopGroup, path: String, until stop: ManagedFlag) async -> (Int, Int) {
        var ok = 0
        var failed = 0
        let request = Array("GET \(path) HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n".utf8)
        while !stop.isSet {
            let outcome = await RawExchange.perform(
                socket: socket, group: group, chunks: [request], gap: .zero, halfClose: false, wait: .seconds(10))
            if outcome.status == 200 { ok += 1 } else { failed += 1 }
            try? await Task.sleep(nanoseconds: 5_000_000)
        }
        return (ok, failed)
    }
}

/// How a raw exchange ended: the status of the first response (0: none) and who closed.
struct RawOutcome: Sendable {
    var status: Int
    var closedByPeer: Bool
}

/// Writes raw bytes (in chunks, `gap` apart), optionally half-closes, and reads until the agent
/// closes or `wait` passes after the last write.
final class RawExchange: ChannelInboundHandler, @unchecked Sendable {
    typealias InboundIn = ByteBuffer

    private let chunks: [[UInt8]]
    private let gap: TimeAmount
    private let halfClose: Bool
    private let wait: TimeAmount
    private let done: EventLoopPromise<RawOutcome>
    private var head: [UInt8] = []
    private var weClosed = false

    init(chunks: [[UInt8]], gap: TimeAmount, halfClose: Bool, wait: TimeAmount, done: EventLoopPromise<RawOutcome>) {
        self.chunks = chunks
        self.gap = gap
        self.halfClose = halfClose
        self.wait = wait
        self.done = done
    }

    static func perform(
        socket: String, group: any EventLoopGroup, chunks: [[UInt8]], gap: TimeAmount, halfClose: Bool,
        wait: TimeAmount
    ) async -> RawOutcome {
        let loop = group.next()
        let promise = loop.makePromise(of: RawOutcome.self)
        let handler = RawExchange(chunks: chunks, gap: gap, halfClose: halfClose, wait: wait, done: promise)
        let bootstrap = ClientBootstrap(group: loop).channelInitializer { channel in
            channel.eventLoop.makeCompletedFuture { try channel.pipeline.syncOperations.addHandler(handler) }
        }
        for attempt in 0..<100 {
            if (try? await bootstrap.connect(unixDomainSocketPath: socket).get()) != nil {
                return (try? await promise.futureResult.get()) ?? RawOutcome(status: 0, closedByPeer: false)
            }
            if attempt < 99 { try? await Task.sleep(nanoseconds: 10_000_000) }
        }
        promise.fail(ChannelError.ioOnClosedChannel)
        return RawOutcome(status: -1, closedByPeer: false)
    }

    func channelActive(context: ChannelHandlerContext) {
        write(chunk: 0, channel: context.channel)
        context.fireChannelActive()
    }

    private func write(chunk: Int, channel: any Channel) {
        guard channel.isActive else { return }
        guard chunk < chunks.count else {
            if halfClose { channel.close(mode: .output, promise: nil) }
            channel.eventLoop.scheduleTask(in: wait) {
                self.weClosed = true
                channel.close(promise: nil)
            }
            return
        }
        channel.writeAndFlush(ByteBuffer(bytes: chunks[chunk]), promise: nil)
        if gap == .zero {
            write(chunk: chunk + 1, channel: channel)
        } else {
            channel.eventLoop.scheduleTask(in: gap) { self.write(chunk: chunk + 1, channel: channel) }
        }
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var buffer = unwrapInboundIn(data)
        if head.count < 16 { head += buffer.readBytes(length: min(buffer.readableBytes, 16 - head.count)) ?? [] }
    }

    func channelInactive(context: ChannelHandlerContext) {
        var status = 0
        if head.count >= 12, head.starts(with: Array("HTTP/1.".utf8)) {
            status = Int(String(decoding: head[9..<12], as: UTF8.self)) ?? 0
        }
        done.succeed(RawOutcome(status: status, closedByPeer: !weClosed))
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        context.close(promise: nil)
    }
}
