import Dispatch
import Synchronization

/// Gives the system back the memory the allocator keeps on its free lists.
///
/// A burst of connections (hundreds of clients at once, most of them refused with 503) leaves
/// about 10 MB of freed buffers in glibc's arenas, which it keeps for reuse: the agent's resident
/// memory stays at the burst's high-water mark long after it.
public protocol MemoryReleasing: Sendable {
    /// Returns free memory to the system; may take milliseconds, so it is never called on an
    /// event loop.
    func releaseFreeMemory()
}

/// When to release: once the open connections are back to none after at least `burst` were open
/// at once. Told of every connection opened and closed, with the count after it.
final class BurstMemoryRelease: Sendable {
    private struct State {
        var peak = 0
        var releasing = false
    }

    private let releaser: any MemoryReleasing
    private let burst: Int
    private let state = Mutex(State())

    init(releaser: any MemoryReleasing, burst: Int) {
        self.releaser = releaser
        self.burst = burst
    }

    func opened(count: Int) {
        state.withLock { $0.peak = max($0.peak, count) }
    }

    func closed(remaining: Int) {
        guard remaining == 0 else { return }
        let due = state.withLock { state -> Bool in
            defer { state.peak = 0 }
            guard state.peak >= burst, !state.releasing else { return false }
            state.releasing = true
            return true
        }
        guard due else { return }
        DispatchQueue.global(qos: .utility).async { [self] in
            releaser.releaseFreeMemory()
            state.withLock { $0.releasing = false }
        }
    }
}
