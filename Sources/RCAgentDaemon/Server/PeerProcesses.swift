import CEpoll
import Glibc
import RCAgentCore

/// The start time of each peer process the front door serves (with the pid, the audit's name for
/// one process: ``ServedTokenAudit``), read from `/proc` once per process instead of once per
/// connection. A pidfd held for each process tells whether it is still the one with that pid: a
/// process that has not exited keeps its pid, so a connection from that pid is from it.
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
        guard let pidfd = Self.pidfd(of: peer, connection: connection) else { return readStartTime(peer) }
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

    /// A pidfd for the process that connected: `SO_PEERPIDFD` (Linux 6.5) names exactly it;
    /// before that, `pidfd_open` names whichever process has the pid now, which is it unless it
    /// exited meanwhile (as reading `/proc/PID/…` does).
    private static func pidfd(of peer: PeerCredentials, connection: CInt) -> CInt? {
        var pidfd: CInt = -1
        var length = socklen_t(MemoryLayout<CInt>.size)
        if getsockopt(connection, SOL_SOCKET, SO_PEERPIDFD, &pidfd, &length) == 0, pidfd >= 0 { return pidfd }
        pidfd = pidfd_open(peer.pid, 0)
        return pidfd >= 0 ? pidfd : nil
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

    private func forgetAll() {
        for pid in Array(known.keys) { forget(pid) }
    }
}
