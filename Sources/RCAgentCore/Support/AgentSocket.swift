import Foundation
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// The agent's socket file: where it is, and the ssh-agent habits around it (private directory,
/// stale-socket probe, removal on exit).
public enum AgentSocket {
    /// `--socket` > `RC_AGENT_SOCK` > `$XDG_RUNTIME_DIR/rc-agent/agent.sock` >
    /// `/run/user/UID/rc-agent/agent.sock` when `/run/user/UID` is a directory owned by the user with
    /// mode 0700 (the runtime directory systemd-logind made, which cron and SSH commands are not
    /// told about) > `/tmp/rc-agent-UID/agent.sock`.
    ///
    /// - Parameter runUser: where the per-user runtime directories are (`/run/user`).
    public static func path(
        flag: String?, environment: [String: String], uid: UInt32 = getuid(), runUser: String = "/run/user"
    ) -> String {
        if let flag, !flag.isEmpty { return flag }
        if let env = environment["RC_AGENT_SOCK"], !env.isEmpty { return env }
        if let runtime = environment["XDG_RUNTIME_DIR"], runtime.hasPrefix("/") {
            return runtime + "/rc-agent/agent.sock"
        }
        let runtime = "\(runUser)/\(uid)"
        var info = stat()
        if lstat(runtime, &info) == 0, info.st_mode & S_IFMT == S_IFDIR, info.st_uid == uid,
            info.st_mode & 0o777 == 0o700
        {
            return runtime + "/rc-agent/agent.sock"
        }
        return "/tmp/rc-agent-\(uid)/agent.sock"
    }

    /// The longest path a `sockaddr_un` holds.
    public static let maximumPathLength = MemoryLayout.size(ofValue: sockaddr_un().sun_path) - 1

    /// Creates the socket's directory 0700 if missing; refuses one that is not a real directory
    /// owned by this user with no group/other permissions.
    public static func prepareDirectory(forSocket path: String) throws {
        guard path.utf8.count <= maximumPathLength else {
            throw SocketSetupError("the socket path is longer than \(maximumPathLength) bytes: \(path)")
        }
        let directory = (path as NSString).deletingLastPathComponent
        if mkdir(directory, 0o700) == 0 {
            // mkdir applies the umask; the mode must not depend on it.
            chmod(directory, 0o700)
        } else if errno != EEXIST {
            throw SocketSetupError("cannot create \(directory): \(String(cString: strerror(errno)))")
        }
        var info = stat()
        guard lstat(directory, &info) == 0 else {
            throw SocketSetupError("cannot inspect \(directory): \(String(cString: strerror(errno)))")
        }
        guard info.st_mode & S_IFMT == S_IFDIR else {
            throw SocketSetupError("\(directory) is not a directory (a symlink or a file is refused)")
        }
        guard info.st_uid == geteuid() else {
            throw SocketSetupError("\(directory) is owned by uid \(info.st_uid), not by you (uid \(geteuid()))")
        }
        let mode = info.st_mode & 0o777
        guard mode & 0o077 == 0 else {
            throw SocketSetupError(
                "\(directory) is mode \(String(mode, radix: 8)); it must be 0700 so no one else can reach the socket",
                hint: "run `chmod 700 \(directory)`")
        }
    }

    /// What is at `path` now.
    public enum Probe: Equatable, Sendable {
        case absent
        /// A socket something accepts connections on.
        case live
        /// A socket nothing listens on (a crashed agent's leftover).
        case stale
        /// Not a socket: never removed.
        case notASocket
    }

    /// Looks at `path` and, if it is a socket, tries to connect to it.
    public static func probe(_ path: String) -> Probe {
        var info = stat()
        guard lstat(path, &info) == 0 else { return .absent }
        guard info.st_mode & S_IFMT == S_IFSOCK else { return .notASocket }
        guard let fd = try? connect(path) else { return .stale }
        close(fd)
        return .live
    }

    /// Makes `path` free to bind: a stale socket is removed, a live agent or a non-socket refuses.
    public static func clearStale(_ path: String) throws {
        switch probe(path) {
        case .absent:
            return
        case .stale:
            guard unlink(path) == 0 || errno == ENOENT else {
                throw SocketSetupError("cannot remove the stale socket \(path): \(String(cString: strerror(errno)))")
            }
        case .live:
            throw SocketSetupError(
                "an agent is already running on \(path)",
                hint: "use it (`export RC_AGENT_SOCK=\(path)`), stop it with `rc-agent stop`, or pick another --socket")
        case .notASocket:
            throw SocketSetupError("\(path) exists and is not a socket; refusing to replace it")
        }
    }

    /// Creates a listening socket at `path`, mode 0600 from birth: bind(2) creates the file with
    /// the process umask, so the umask is 0177 for that one call (under a lock: it is process-wide).
    package static func listen(at path: String, backlog: CInt = AgentSocket.backlog) throws -> CInt {
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw SocketSetupError("socket: \(String(cString: strerror(errno)))") }
        var address = unixAddress(path)
        let bound = umaskLock.withLock { _ -> CInt in
            let previous = umask(0o177)
            defer { umask(previous) }
            return withUnsafePointer(to: &address) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                    bind(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size))
                }
            }
        }
        guard bound == 0, Glibc.listen(fd, backlog) == 0 else {
            let message = String(cString: strerror(errno))
            close(fd)
            throw SocketSetupError("cannot listen on \(path): \(message)")
        }
        return fd
    }

    private static let umaskLock = Mutex(())

    /// Connections the kernel queues before the agent accepts them.
    package static let backlog: CInt = 256

    /// `path` as a `sockaddr_un` (the caller has checked its length).
    package static func unixAddress(_ path: String) -> sockaddr_un {
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        withUnsafeMutableBytes(of: &address.sun_path) { raw in
            for (index, byte) in path.utf8.prefix(raw.count - 1).enumerated() { raw[index] = byte }
        }
        return address
    }

    /// The identity of the file at `path` (to remove only the socket this process created).
    package static func identity(_ path: String) -> (dev: UInt64, ino: UInt64)? {
        var info = stat()
        guard lstat(path, &info) == 0 else { return nil }
        return (UInt64(info.st_dev), UInt64(info.st_ino))
    }

    /// Removes `path` if it is still the file with `identity`.
    package static func remove(_ path: String, ifIdentity identity: (dev: UInt64, ino: UInt64)) {
        guard let current = self.identity(path), current == identity else { return }
        unlink(path)
    }

    /// A blocking connect to the Unix socket at `path`; returns the descriptor.
    package static func connect(_ path: String) throws -> CInt {
        guard path.utf8.count <= maximumPathLength else {
            throw SocketSetupError("the socket path is longer than \(maximumPathLength) bytes")
        }
        let fd = socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        guard fd >= 0 else { throw SocketSetupError(String(cString: strerror(errno))) }
        var address = unixAddress(path)
        let result = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                Glibc.connect(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size))
            }
        }
        guard result == 0 else {
            let message = String(cString: strerror(errno))
            close(fd)
            throw SocketSetupError(message)
        }
        return fd
    }
}

/// The socket cannot be set up (or reached); the message says why and what to do.
public struct SocketSetupError: RCAgentError, Equatable {
    public let message: String
    public let hint: String?
    public init(_ message: String, hint: String? = nil) {
        self.message = message
        self.hint = hint
    }
    public var code: ErrorCode { .socketError }
}
