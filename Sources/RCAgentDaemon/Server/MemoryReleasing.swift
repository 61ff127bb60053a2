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
/// at once, or after `churn` connections in all since the last release (many short connections
/// a few at a time, bad input among them, leave freed buffers behind as a burst does). At most
/// once every `interval` (a trim takes each arena's lock in turn, so a client repeating bursts
/// must not keep the event loops waiting): a burst that ends sooner is released when the interval
/// is over. Told of every connection opened and closed, with the count after it.
final class BurstMemoryRelease: Sendable {
    private struct State {
        var peak = 0
        /// Connections opened since the last release was scheduled.
        var opened = 0
        /// A release is scheduled and has not run yet: it covers every burst that ends before it.
        var pending = false
        var last: ContinuousClock.Instant?
    }

    private let releaser: any MemoryReleasing
    private let burst: Int
    private let churn: Int
    private let interval: Duration
    private let state = Mutex(State())

    init(releaser: any MemoryReleasing, burst: Int, churn: Int, interval: Duration = .seconds(5)) {
        self.releaser = releaser
        self.burst = burst
        self.churn = churn
        self.interval = interval
    }

    func opened(count: Int) {
        state.withLock {
            $0.peak = max($0.peak, count)
            $0.opened += 1
        }
    }

    func closed(remaining: Int) {
        guard remaining == 0 else { return }
        let delay = state.withLock { state -> Duration? in
            defer { state.peak = 0 }
            guard state.peak >= burst || state.opened >= churn, !state.pending else { return nil }
            state.pending = true
            state.opened = 0
            let wait = state.last.map { interval - (ContinuousClock.now - $0) } ?? .zero
            return max(wait, .zero)
        }
        guard let delay else { return }
        let nanoseconds = Int(delay / .nanoseconds(1))
        DispatchQueue.global(qos: .utility).asyncAfter(deadline: .now() + .nanoseconds(nanoseconds)) { [self] in
            state.withLock {
                $0.pending = false
                $0.last = ContinuousClock.now
            }
            releaser.releaseFreeMemory()
        }
    }
}
