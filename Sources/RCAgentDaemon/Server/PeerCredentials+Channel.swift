import Glibc
import NIOCore
import RCAgentCore

extension PeerCredentials {
    /// Reads the peer of `channel` (on its event loop).
    static func of(channel: any Channel) -> EventLoopFuture<PeerCredentials?> {
        guard let provider = channel as? any SocketOptionProvider else {
            return channel.eventLoop.makeSucceededFuture(nil)
        }
        return provider.unsafeGetSocketOption(level: .socket, name: .init(rawValue: SO_PEERCRED))
            .map { (cred: UCred) in PeerCredentials(cred) }
            .recover { _ in nil }
    }
}
