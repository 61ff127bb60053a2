import Foundation
import Logging
import NIOCore
import NIOPosix
import RCAgentCore
import RCAgentDaemon
import RCAgentLive
import RiskCloudStandIn
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// The real socket server on a temporary socket, with the real token client talking to the
/// stand-in on loopback; credentials come from an in-memory store (the keyring end to end is
/// the integration tests' job).
package enum InProcessAgent {
    package static let clientID = "agent-test-client"
    package static let secret = "agent-test-secret-\(UUID().uuidString)"

    /// A private directory whose socket path fits in sun_path.
    package struct TempDir {
        package let path: String
        package init() throws {
            let base = ProcessInfo.processInfo.environment["RC_SANDBOX"] ?? "/tmp"
            path = base + "/ss-" + String(UUID().uuidString.prefix(8)).lowercased()
            try FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        }
        package var socket: String { path + "/agent/agent.sock" }
    }

    /// Where the agent's connections run: its socket's (`server`) and the tenant's (`tenant`).
    package struct AgentEventLoops: Sendable {
        package var server: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton
        package var tenant: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton

        package init(server: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton, tenant: any EventLoopGroup = MultiThreadedEventLoopGroup.singleton) {
            self.server = server
            self.tenant = tenant
        }
    }

    /// A running agent server; `stop()` cancels it and waits until it has finished.
    package struct Agent {
        package let socket: String
        package let cache: TokenCache
        package let store: any CredentialStore
        package let client: RiskCloudClient
        package let task: Task<Void, any Error>

        package func stop() async throws {
            task.cancel()
            defer { Task { try? await client.shutdown() } }
            try await task.value
        }
    }

    package static func startAgent(
        listener: AgentListener, socketPath: String, standInURL: String, limits: AgentServerLimits = AgentServerLimits(),
        allowedUIDs: Set<UInt32> = [getuid()], audit: Logger = Logger(label: "rc-agent.audit"),
        memory: (any MemoryReleasing)? = nil, eventLoops: AgentEventLoops = AgentEventLoops(),
        wrapStore: (AgentMemoryStore) -> any CredentialStore = { $0 }
    ) async throws -> Agent {
        let store = wrapStore(AgentMemoryStore([
            StoredCredential(
                profile: "default", clientID: clientID, url: standInURL, secret: Secret(secret), created: Date())
        ]))
        let client = try RiskCloudClient(eventLoopGroup: eventLoops.tenant)
        let cache = TokenCache(store: store, fetcher: client, clock: SystemClock())
        let profiles = try AgentProfiles(load: { ["default": standInURL] })
        var api = AgentAPI(
            cache: cache, profiles: profiles, store: store, clock: SystemClock(), socketPath: socketPath,
            requestShutdown: {}, audit: audit)
        api.connections = SharedTenantConnections(fetcher: client, proxy: client)
        let (ready, readyContinuation) = AsyncStream<Void>.makeStream()
        let server = AgentSocketServer(
            listener: listener, responder: api.router().buildResponder(), tokenFastPath: api.tokenFastPath(),
            limits: limits, allowedUIDs: { allowedUIDs },
            onListening: { readyContinuation.yield() }, memory: memory, eventLoopGroup: eventLoops.server)
        let task = Task {
            defer { readyContinuation.finish() }
            try await server.run()
        }
        var iterator = ready.makeAsyncIterator()
        if await iterator.next() == nil {
            try? await client.shutdown()
            try await task.value
        }
        return Agent(socket: socketPath, cache: cache, store: store, client: client, task: task)
    }

    /// The stand-in with our client, and an agent on a fresh socket.
    package static func withAgent(
        state: StandInState = StandInState(), limits: AgentServerLimits = AgentServerLimits(),
        allowedUIDs: Set<UInt32> = [getuid()], audit: Logger = Logger(label: "rc-agent.audit"),
        memory: (any MemoryReleasing)? = nil, eventLoops: AgentEventLoops = AgentEventLoops(),
        wrapStore: (AgentMemoryStore) -> any CredentialStore = { $0 },
        _ body: (Agent, StandInState, TempDir) async throws -> Void
    ) async throws {
        await state.addClient(id: clientID, secret: secret)
        let dir = try TempDir()
        defer { try? FileManager.default.removeItem(atPath: dir.path) }
        try await withStandIn(state) { url in
            let agent = try await startAgent(
                listener: .path(dir.socket), socketPath: dir.socket, standInURL: url, limits: limits, allowedUIDs: allowedUIDs,
                audit: audit, memory: memory, eventLoops: eventLoops, wrapStore: wrapStore)
            do {
                try await body(agent, state, dir)
                try await agent.stop()
            } catch {
                try? await agent.stop()
                throw error
            }
        }
    }
}

// MARK: Helpers

/// Runs blocking work (sockets, pipes) on a thread of its own: a test task blocked on a thread of
/// the concurrency pool (two threads on two cores) can starve the agent's router, which answers there.
package func onOwnThread<T: Sendable>(_ body: @escaping @Sendable () -> T) async -> T {
    await withCheckedContinuation { continuation in
        Thread { continuation.resume(returning: body()) }.start()
    }
}

/// `curl --unix-socket SOCKET http://localhost TARGET` as this user.
package func curl(_ socket: String, _ target: String, method: String = "GET", headers: [String] = []) async throws
    -> SocketReply
{
    try await curlUnixSocket(
        socket: socket, target, method: method, headers: headers, environment: ProcessInfo.processInfo.environment)
}

package func mode(of path: String) throws -> Int {
    let attributes = try FileManager.default.attributesOfItem(atPath: path)
    return (attributes[.posixPermissions] as? Int ?? -1) & 0o777
}

/// What ``readAll(_:guardSeconds:)`` read and how the read ended.
package struct SocketRead: Sendable {
    /// How the read ended.
    package enum Ending: Sendable, Equatable {
        /// The server closed the connection (EOF, or a reset after it closed).
        case closed
        /// Nothing came for the guard time: the server kept the connection open.
        case guardTimeExpired
        /// `recv` failed otherwise (errno).
        case failed(Int32)
    }

    package let text: String
    package let ending: Ending
    /// Seconds from the call until the read ended.
    package let seconds: Double
}

/// Reads until the server closes the connection, or until nothing has come for `guardSeconds`
/// (a hang): the two are told apart in ``SocketRead/ending``.
package func readAll(_ fd: CInt, guardSeconds: Int = 10) -> SocketRead {
    let started = DispatchTime.now().uptimeNanoseconds
    var limit = timeval(tv_sec: guardSeconds, tv_usec: 0)
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &limit, socklen_t(MemoryLayout<timeval>.size))
    var data: [UInt8] = []
    var buffer = [UInt8](repeating: 0, count: 4096)
    var ending = SocketRead.Ending.closed
    while true {
        let count = buffer.withUnsafeMutableBytes { recv(fd, $0.baseAddress, $0.count, 0) }
        if count > 0 {
            data += buffer[0..<count]
            continue
        }
        if count < 0 {
            if errno == EINTR { continue }
            if errno == EAGAIN || errno == EWOULDBLOCK {
                ending = .guardTimeExpired
            } else if errno != ECONNRESET {
                ending = .failed(errno)
            }
        }
        break
    }
    let seconds = Double(DispatchTime.now().uptimeNanoseconds - started) / 1e9
    return SocketRead(text: String(decoding: data, as: UTF8.self), ending: ending, seconds: seconds)
}

private func boundSocket(at path: String) throws -> CInt {
    let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
    var address = sockaddr_un()
    address.sun_family = sa_family_t(AF_UNIX)
    withUnsafeMutableBytes(of: &address.sun_path) { raw in
        for (index, byte) in path.utf8.enumerated() { raw[index] = byte }
    }
    let result = withUnsafePointer(to: &address) {
        $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
    }
    guard result == 0 else { throw SocketSetupError("bind: \(String(cString: strerror(errno)))") }
    return fd
}

/// A socket file nobody listens on, like the one a crashed agent leaves.
package func makeStaleSocket(at path: String) throws {
    let fd = try boundSocket(at: path)
    close(fd)
}

/// A bound, listening socket, as systemd passes one.
package func listeningSocket(at path: String) throws -> CInt {
    let fd = try boundSocket(at: path)
    guard listen(fd, 16) == 0 else { throw SocketSetupError("listen failed") }
    return fd
}
