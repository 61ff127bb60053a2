import Foundation
import Glibc
import RCAgentCore
import RCAgentTestSupport
import Synchronization
import Testing

/// Scripts keep connecting while the agent shuts down (`rc-agent stop` beside a cron job's
/// `token`): a connection whose set-up ends after the listener closed is dropped by NIO, and an
/// unused async channel used to trap the agent ("Deinited NIOAsyncWriter without calling
/// finish()") — it died of SIGILL instead of exiting, and hung while its crash handler ran.
@Suite(.serialized) struct ShutdownRaceTests {
    @Test func clientsConnectingWhileTheAgentStopsDoNotCrashIt() async throws {
        try await AgentWorld.run { world in
            for round in 0..<6 {
                let agent = try await world.daemon()
                let stop = StopFlag()
                let socket = world.socket
                // Threads, not tasks: blocking loops would starve the concurrency pool this test waits on.
                let hammers = (0..<4).map { _ in Hammer(socket: socket, stop: stop) }
                try await Task.sleep(nanoseconds: 100_000_000)
                agent.send(SIGTERM)
                let status = await agent.waitForExit(seconds: 30)
                stop.value.store(true, ordering: .relaxed)
                var connections = 0
                for hammer in hammers { connections += hammer.join() }
                #expect(connections > 0, "round \(round): no client got through before the stop")
                #expect(status == 0, "round \(round): the agent ended with \(status.map(String.init) ?? "nothing (still running)")\n\(Self.crashLines(agent.log))\nLOG:\n\(agent.log.split(separator: "\n").filter { !$0.contains("[ra]") }.suffix(60).joined(separator: "\n"))")
                if status != 0 { break }
            }
        }
    }

    /// The fatal error and the agent's own frames of a crash report.
    private static func crashLines(_ log: String) -> String {
        log.split(separator: "\n").filter { $0.contains("Fatal") || $0.contains("/Sources/") }.prefix(40)
            .joined(separator: "\n")
    }

    /// Connects, sends a request head and closes without reading, as fast as it can; returns the
    /// number of connections the agent accepted.
    fileprivate static func connectRepeatedly(_ path: String, until stop: StopFlag) -> Int {
        let request = Array("GET /healthz HTTP/1.1\r\nHost: localhost\r\n\r\n".utf8)
        var accepted = 0
        while !stop.value.load(ordering: .relaxed) {
            guard let fd = try? AgentSocket.connect(path) else {
                usleep(1000)
                continue
            }
            accepted += 1
            _ = request.withUnsafeBytes { write(fd, $0.baseAddress, $0.count) }
            close(fd)
        }
        return accepted
    }
}

private final class StopFlag: Sendable {
    let value = Atomic<Bool>(false)
}

/// A thread running ``ShutdownRaceTests/connectRepeatedly(_:until:)``.
private final class Hammer: @unchecked Sendable {
    private let done = DispatchSemaphore(value: 0)
    private var connections = 0

    init(socket: String, stop: StopFlag) {
        Thread.detachNewThread { [self] in
            connections = ShutdownRaceTests.connectRepeatedly(socket, until: stop)
            done.signal()
        }
    }

    func join() -> Int {
        done.wait()
        return connections
    }
}
