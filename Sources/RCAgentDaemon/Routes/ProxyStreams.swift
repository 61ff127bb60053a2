import Synchronization

/// The proxied requests in progress, per profile, up to a limit: past it the proxy answers `503`
/// (`proxy_busy`) at once instead of queueing behind the requests in progress.
final class ProxyStreams: Sendable {
    let limit: Int
    private let counts = Mutex<[String: Int]>([:])

    init(limit: Int) { self.limit = max(1, limit) }

    /// A place for one request of `profile`, or nil when `limit` are in progress.
    func acquire(_ profile: String) -> Slot? {
        let taken = counts.withLock { counts -> Bool in
            guard counts[profile, default: 0] < limit else { return false }
            counts[profile, default: 0] += 1
            return true
        }
        return taken ? Slot(profile: profile, streams: self) : nil
    }

    /// Requests of `profile` in progress.
    func inProgress(_ profile: String) -> Int { counts.withLock { $0[profile, default: 0] } }

    private func release(_ profile: String) {
        counts.withLock { counts in
            let left = counts[profile, default: 1] - 1
            counts[profile] = left > 0 ? left : nil
        }
    }

    /// One request's place: given back by ``release()``, or when the last reference goes (an
    /// answer that was never written).
    final class Slot: Sendable {
        private let profile: String
        private let streams: ProxyStreams
        private let released = Atomic<Bool>(false)

        fileprivate init(profile: String, streams: ProxyStreams) {
            self.profile = profile
            self.streams = streams
        }

        func release() {
            if !released.exchange(true, ordering: .relaxed) { streams.release(profile) }
        }

        deinit { release() }
    }
}
