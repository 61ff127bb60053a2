import Logging
import RCAgentCore
import ServiceLifecycle
import Synchronization

/// Ends the daemon when its socket file is removed or replaced, as gpg-agent does: no client can
/// reach it any more (its runtime directory was deleted, another agent took the path), so it would
/// only live on unseen, holding tokens. Idle for a socket systemd passed (never armed).
final class SocketWatchService: Service {
    private let path: String
    private let interval: Duration
    private let logger: Logger
    private let bound = Mutex<(dev: UInt64, ino: UInt64)?>(nil)

    init(path: String, interval: Duration, logger: Logger) {
        self.path = path
        self.interval = interval
        self.logger = logger
    }

    /// Records the socket file this process has just bound.
    func arm() {
        let identity = AgentSocket.identity(path)
        bound.withLock { $0 = identity }
    }

    /// Returns when the file at the path is no longer the bound socket; ends quietly on shutdown.
    func run() async throws {
        try? await cancelWhenGracefulShutdown {
            while true {
                try await Task.sleep(for: self.interval)
                guard let expected = self.bound.withLock({ $0 }) else { continue }
                if let current = AgentSocket.identity(self.path), current == expected { continue }
                self.logger.warning(
                    "the socket file was removed or replaced; shutting down", metadata: ["socket": "\(self.path)"])
                return
            }
        }
        // A graceful shutdown cancelled the loop: returning then changes nothing.
    }
}
