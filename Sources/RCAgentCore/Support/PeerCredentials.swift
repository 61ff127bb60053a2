import Glibc

/// The process on the other end of a Unix socket connection, from `SO_PEERCRED`: the agent reads
/// it on every connection, a client reads the agent's before it sends anything.
public struct PeerCredentials: Sendable, Equatable, CustomStringConvertible {
    public var pid: Int32
    public var uid: UInt32
    public var gid: UInt32

    public init(pid: Int32, uid: UInt32, gid: UInt32) {
        self.pid = pid
        self.uid = uid
        self.gid = gid
    }

    /// `struct ucred` as the kernel fills it in (Glibc declares it only with _GNU_SOURCE).
    package struct UCred {
        var pid: Int32 = 0
        var uid: UInt32 = 0
        var gid: UInt32 = 0
        package init() {}
    }

    package init(_ cred: UCred) { self.init(pid: cred.pid, uid: cred.uid, gid: cred.gid) }

    /// Reads the peer of the connected socket `fd`; nil when the kernel does not say (`errno` tells why).
    package static func of(descriptor fd: CInt) -> PeerCredentials? {
        var cred = UCred()
        var length = socklen_t(MemoryLayout<UCred>.size)
        guard getsockopt(fd, SOL_SOCKET, SO_PEERCRED, &cred, &length) == 0 else { return nil }
        return PeerCredentials(cred)
    }

    /// `/proc/PID/exe` of the peer, or nil when it cannot be read (the process is gone, or hides itself).
    public var executable: String? {
        var buffer = [CChar](repeating: 0, count: Int(PATH_MAX) + 1)
        let count = readlink("/proc/\(pid)/exe", &buffer, buffer.count - 1)
        guard count > 0 else { return nil }
        return String(decoding: buffer[0..<count].map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    public var description: String { "pid \(pid) uid \(uid)" }
}
