import Foundation
import Synchronization
import Testing

@testable import RCAgentCore
@testable import RCAgentDaemon
import RCAgentTestSupport

/// The front door's start times per peer process: read once while the process lives, read again
/// once it has exited (a later process with its pid is another peer).
@Suite struct PeerProcessesTests {
    @Test func aLiveProcessIsReadOnceAndAnExitedOneAgain() async throws {
        let dir = try InProcessAgent.TempDir()
        defer { try? FileManager.default.removeItem(atPath: dir.path) }
        let path = dir.path + "/peer.sock"
        let listener = try listeningSocket(at: path)
        defer { close(listener) }
        _ = fcntl(listener, F_SETFL, O_NONBLOCK)
        let child = try await ChildProcess([
            "/usr/bin/python3", "-c",
            "import socket, time; s = socket.socket(socket.AF_UNIX); s.connect('\(path)'); time.sleep(60)",
        ])
        defer { child.kill() }
        var connection: CInt = -1
        #expect(try await child.waitUntil { connection = accept(listener, nil, nil); return connection >= 0 })
        defer { close(connection) }
        let peer = try #require(PeerCredentials.of(descriptor: connection))
        let expected = try #require(peer.startTime, "the child's /proc/PID/stat")

        let reads = Mutex(0)
        let peers = PeerProcesses { peer in
            reads.withLock { $0 += 1 }
            return peer.startTime
        }
        #expect(peers.started(peer, connection: connection) == expected)
        #expect(peers.started(peer, connection: connection) == expected)
        #expect(peers.started(peer, connection: connection) == expected)
        #expect(reads.withLock { $0 } == 1, "read once while the process lives")

        child.kill()
        _ = try await child.wait()
        #expect(peers.started(peer, connection: connection) == nil, "the process is gone: nothing to read")
        #expect(reads.withLock { $0 } == 2, "read again once it has exited")
    }

    /// A process the agent cannot hold a pidfd for is read on every connection (as before).
    @Test func withoutAPidfdEveryConnectionIsRead() throws {
        let reads = Mutex(0)
        let peers = PeerProcesses { _ in
            reads.withLock { $0 += 1 }
            return 42
        }
        let nobody = PeerCredentials(pid: Int32.max, uid: getuid(), gid: getgid())
        #expect(peers.started(nobody, connection: -1) == 42)
        #expect(peers.started(nobody, connection: -1) == 42)
        #expect(reads.withLock { $0 } == 2)
    }
}
