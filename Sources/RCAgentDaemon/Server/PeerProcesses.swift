import CEpoll
import Glibc
import RCAgentCore

/// The start time of each peer process the front door serves (with the pid, the audit's name for
/// one process: ``ServedTokenAudit``), read from `/proc` once per process instead of once per
/// connection. A pidfd held for each process tells whether it is still the one with that pid: a
/// process that has not exited keeps its pid, so a connection whose `SO_PEERCRED` pid is that
/// one's was made by it (or by a process that handed it the socket and has exited since, as
/// with a `/proc` read).
///
/// Why: reading `/proc/PID/stat` (an open, a read and a close) was most of what the front door
/// did per connection beyond ssh-agent's work; a client that opens a connection per token now
/// pays it once, and a `poll` per connection after that. The executable is still read for every
/// connection: `execve` changes it, but not the pid or the start time.
///
/// Used by the front door's thread alone.
final class PeerProcesses {
    private struct Known {
        let pidfd: CInt
        let started: UInt64?
    }

    private var known: [Int32: Known] = [:]
    /// Processes remembered at once (each holds a descriptor).
    private let capacity: Int
    private let readStartTime: (PeerCredentials) -> UInt64?

    /// - Parameter readStartTime: reads a process's start time (`/proc/PID/stat`).
    init(capacity: Int = 64, readStartTime: @escaping (PeerCredentials) -> UInt64? = { $0.startTime }) {
        self.capacity = capacity
        self.readStartTime = readStartTime
    }

    deinit { for entry in known.values { close(entry.pidfd) } }

    /// The start time of the process at the other end of `connection` (`peer`, from
    /// `SO_PEERCRED`); nil when `/proc` does not tell (the process is gone).
    func started(_ peer: PeerCredentials, connection: CInt) -> UInt64? {
        if let entry = known[peer.pid] {
            if !Self.hasExited(entry.pidfd) { return entry.started }
            forget(peer.pid)
        }
        let pidfd: CInt
        switch Self.pidfd(of: peer, connection: connection) {
        case .process(let descriptor): pidfd = descriptor
        case .gone: return nil
        case .unknown: return readStartTime(peer)
        }
        let started = readStartTime(peer)
        // Read while the pidfd's process was alive: then the start time is its own.
        guard !Self.hasExited(pidfd) else {
            close(pidfd)
            return started
        }
        if known.count >= capacity { forgetExited() }
        if known.count >= capacity { forgetAll() }
        known[peer.pid] = Known(pidfd: pidfd, started: started)
        return started
    }

    private enum Pidfd {
        case process(CInt)
        /// The process that connected has exited: whatever has its pid now is another.
        case gone
        /// No pidfd can be had (a kernel without pidfds, no descriptors left, a sandbox that refuses).
        case unknown
    }

    /// A pidfd for the process that connected: `SO_PEERPIDFD` (Linux 6.5) names exactly it;
    /// before that, `pidfd_open` names whichever process has the pid now, which is it unless it
    /// exited meanwhile (as reading `/proc/PID/…` does).
    private static func pidfd(of peer: PeerCredentials, connection: CInt) -> Pidfd {
        var pidfd: CInt = -1
        var length = socklen_t(MemoryLayout<CInt>.size)
        if getsockopt(connection, SOL_SOCKET, SO_PEERPIDFD, &pidfd, &length) == 0 {
            guard length == socklen_t(MemoryLayout<CInt>.size), pidfd > STDERR_FILENO else { return .unknown }
            return .process(pidfd)
        }
        switch errno {
        case ENOPROTOOPT:
            pidfd = pidfd_open(peer.pid, 0)
            return pidfd >= 0 ? .process(pidfd) : .unknown
        case EINVAL, ESRCH: return .gone
        default: return .unknown
        }
    }

    /// A pidfd polls readable once its process has exited.
    private static func hasExited(_ pidfd: CInt) -> Bool {
        var entry = pollfd(fd: pidfd, events: Int16(POLLIN), revents: 0)
        return poll(&entry, 1, 0) != 0
    }

    private func forget(_ pid: Int32) {
        guard let entry = known.removeValue(forKey: pid) else { return }
        close(entry.pidfd)
    }

    private func forgetExited() {
        for (pid, entry) in known where Self.hasExited(entry.pidfd) { forget(pid) }
    }

    /// Closes every pidfd (the front door stops).
    func forgetAll() {
        for pid in Array(known.keys) { forget(pid) }
    }
}
