import Glibc

/// The process on the other end of a Unix socket connection, from `SO_PEERCRED`: the agent reads
/// it on every connection, a client reads the agent's before it sends anything.
public struct PeerCredentials: Sendable, Hashable, CustomStringConvertible {
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
        var buffer = [UInt8](repeating: 0, count: Int(PATH_MAX) + 1)
        let count = buffer.withUnsafeMutableBytes { bytes in
            readlink("/proc/\(pid)/exe", bytes.baseAddress!.assumingMemoryBound(to: CChar.self), bytes.count - 1)
        }
        guard count > 0 else { return nil }
        return String(decoding: buffer[0..<count], as: UTF8.self)
    }

    /// When the peer process started (`/proc/PID/stat` field 22, clock ticks since boot), or nil
    /// when it cannot be read. With the pid it names one process: a pid is reused, a start time
    /// with it is not.
    public var startTime: UInt64? {
        let fd = open("/proc/\(pid)/stat", O_RDONLY | O_CLOEXEC)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        var buffer = [UInt8](repeating: 0, count: 1024)
        let count = read(fd, &buffer, buffer.count)
        guard count > 0 else { return nil }
        return Self.startTime(stat: buffer[0..<count])
    }

    /// Field 22 of a `/proc/PID/stat` line. The command name (field 2) is in parentheses and may
    /// hold spaces or parentheses itself: the fields after it start after the last ')'. Read in
    /// place (the agent asks once per connection).
    package static func startTime(stat: ArraySlice<UInt8>) -> UInt64? {
        guard let nameEnd = stat.lastIndex(of: UInt8(ascii: ")")) else { return nil }
        // ") S 1 …": field k starts after the (k - 2)th space after the name.
        var spaces = 0
        var value: UInt64 = 0
        var digits = 0
        for byte in stat[(nameEnd + 1)...] {
            if byte == UInt8(ascii: " ") {
                if spaces == 20 { break }
                spaces += 1
            } else if spaces == 20 {
                guard byte >= UInt8(ascii: "0"), byte <= UInt8(ascii: "9"), digits < 19 else { return nil }
                value = value * 10 + UInt64(byte - UInt8(ascii: "0"))
                digits += 1
            }
        }
        return digits > 0 ? value : nil
    }

    public var description: String { "pid \(pid) uid \(uid)" }
}
