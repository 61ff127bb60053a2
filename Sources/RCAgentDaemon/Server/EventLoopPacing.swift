import NIOCore

/// Keeps a task that writes to a connection from running ahead of the connection's event loop.
///
/// An async body writer (NIO's `NIOAsyncWriter` under Hummingbird's response writer, and
/// AsyncHTTPClient's request body writer) hands each write to the event loop and returns at once
/// for as long as it believes the connection writable, which it learns otherwise only once the
/// loop has done those writes. While the loop is behind (a busy machine, a long task on it)
/// nothing stops the writer: a proxied 64 MiB answer was read whole from the tenant while its
/// caller read nothing. After every `limit` bytes this waits for the loops to catch up, so no
/// more than that is queued for them beyond the connection's own write buffer.
public struct EventLoopPacing: Sendable {
    /// Bytes handed to the loop between two waits for it.
    public static let defaultLimit = 256 * 1024

    private let eventLoops: [any EventLoop]
    private let limit: Int
    private var queued = 0

    /// `eventLoops`: the one the connection is on, or every loop it may be on; none never waits
    /// (no connection, as in a router tested alone).
    public init(eventLoops: [any EventLoop], limit: Int = Self.defaultLimit) {
        self.eventLoops = eventLoops
        self.limit = limit
    }

    /// Call after handing `bytes` to the loop; waits for it when `limit` bytes have gone since the last wait.
    public mutating func wrote(_ bytes: Int) async throws {
        queued += bytes
        guard queued >= limit else { return }
        queued = 0
        // All at once: the wait is the slowest loop's, not their sum.
        let caughtUp = eventLoops.map { $0.submit {} }
        for loop in caughtUp { try await loop.get() }
    }
}
