import RCAgentCore
import Dispatch
import Glibc

/// Runs `action` on every SIGHUP until cancelled.
final class ReloadSignal {
    private let source: any DispatchSourceSignal

    init(action: @escaping @Sendable () async -> Void) {
        signal(SIGHUP, SIG_IGN)
        source = DispatchSource.makeSignalSource(signal: SIGHUP, queue: .global())
        source.setEventHandler { Task { await action() } }
        source.resume()
    }

    func cancel() { source.cancel() }
}
