import ArgumentParser
import Dispatch
import NIOCore
import NIOHTTP1
import NIOPosix

#if canImport(Glibc)
import Glibc
#endif

/// The stack's ceiling: a bare SwiftNIO HTTP/1.1 server on one event loop that answers every
/// request with a constant of the token answer's size. Nothing an agent must do (peer check,
/// routing, cache, audit) happens here, so how close rc-agent comes to it tells what rc-agent's
/// own work costs, and how far it stays from ssh-agent tells what SwiftNIO's HTTP/1 costs.
/// Serves until SIGTERM or SIGINT.
struct Ceiling: ParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "A bare SwiftNIO HTTP/1 server answering a constant on a Unix socket (the ceiling).")
    @Option(help: "Where to listen (created; removed at exit).") var socket: String
    @Option(help: "Body size of the constant answer.") var bodyBytes: Int = 300
    @Option(help: "Event-loop threads.") var threads: Int = 1

    func run() throws {
        let group = MultiThreadedEventLoopGroup(numberOfThreads: max(1, threads))
        let body = ByteBuffer(repeating: UInt8(ascii: "x"), count: bodyBytes)
        unlink(socket)
        let channel = try ServerBootstrap(group: group)
            .serverChannelOption(ChannelOptions.backlog, value: 512)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.configureHTTPServerPipeline(withErrorHandling: true)
                    try channel.pipeline.syncOperations.addHandler(ConstantAnswer(body: body))
                }
            }
            .bind(unixDomainSocketPath: socket).wait()
        print("listening socket=\(socket)")
        fflush(nil)
        let stop = DispatchSemaphore(value: 0)
        let sources = [SIGTERM, SIGINT].map { signalNumber in
            signal(signalNumber, SIG_IGN)
            let source = DispatchSource.makeSignalSource(signal: signalNumber, queue: .global())
            source.setEventHandler { stop.signal() }
            source.resume()
            return source
        }
        stop.wait()
        sources.forEach { $0.cancel() }
        try? channel.close().wait()
        unlink(socket)
        try? group.syncShutdownGracefully()
    }
}

/// Answers each request's end with the same 200.
final class ConstantAnswer: ChannelInboundHandler, @unchecked Sendable {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart
    private let body: ByteBuffer
    private let head: HTTPResponseHead

    init(body: ByteBuffer) {
        self.body = body
        var headers = HTTPHeaders()
        headers.add(name: "Content-Type", value: "application/json")
        headers.add(name: "Content-Length", value: String(body.readableBytes))
        headers.add(name: "Cache-Control", value: "no-store")
        head = HTTPResponseHead(version: .http1_1, status: .ok, headers: headers)
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard case .end = unwrapInboundIn(data) else { return }
        context.write(wrapOutboundOut(.head(head)), promise: nil)
        context.write(wrapOutboundOut(.body(.byteBuffer(body))), promise: nil)
        context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: nil)
    }
}
