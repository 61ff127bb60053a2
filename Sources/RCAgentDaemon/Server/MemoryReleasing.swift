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
/// at once, and not more often than every `interval` (a trim takes each arena's lock in turn, so
/// a client repeating bursts must not keep the event loops waiting). Told of every connection
/// opened and closed, with the count after it.
final class BurstMemoryRelease: Sendable {
    private struct State {
        var peak = 0
        var releasing = false
        var last: ContinuousClock.Instant?
    }

    private let releaser: any MemoryReleasing
    private let burst: Int
    private let interval: Duration
    private let state = Mutex(State())

    init(releaser: any MemoryReleasing, burst: Int, interval: Duration = .seconds(30)) {
        self.releaser = releaser
        self.burst = burst
        self.interval = interval
    }

    func opened(count: Int) {
        state.withLock { $0.peak = max($0.peak, count) }
    }

    func closed(remaining: Int) {
        guard remaining == 0 else { return }
        let due = state.withLock { state -> Bool in
            defer { state.peak = 0 }
            let now = ContinuousClock.now
            guard state.peak >= burst, !state.releasing, state.last.map({ now - $0 >= interval }) ?? true else {
                return false
            }
            state.releasing = true
            state.last = now
            return true
        }
        guard due else { return }
        DispatchQueue.global(qos: .utility).async { [self] in
            releaser.releaseFreeMemory()
            state.withLock { $0.releasing = false }
        }
    }
}
