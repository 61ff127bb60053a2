import FoundationEssentials
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
        let directory = PathText.directory(of: path)
        if mkdir(directory, 0o700) == 0 {
            // mkdir applies the umask; the mode must not depend on it.
            chmod(directory, 0o700)
        } else if errno != EEXIST {
            throw SocketSetupError("cannot create \(directory): \(String(cString: strerror(errno)))")
        }
        switch try inspectDirectory(directory) {
        case .private:
            return
        case .missing:
            throw SocketSetupError("cannot inspect \(directory): \(String(cString: strerror(ENOENT)))")
        case .notADirectory:
            throw SocketSetupError("\(directory) is not a directory (a symlink or a file is refused)")
        case .owned(let uid):
            throw SocketSetupError("\(directory) is owned by \(describe(uid: uid)), not by you (uid \(geteuid()))")
        case .open(let mode):
            throw SocketSetupError(
                "\(directory) is mode \(String(mode, radix: 8)); it must be 0700 so no one else can reach the socket",
                hint: "run `chmod 700 \(directory)`")
        }
    }

    /// What `lstat` says about the socket's directory.
    package enum DirectoryState: Equatable, Sendable {
        /// A real directory owned by this user with no group/other permissions.
        case `private`
        case missing
        /// A symlink, a file, anything but a directory.
        case notADirectory
        /// Owned by another uid.
        case owned(by: UInt32)
        /// Ours, but with group/other permissions (the mode's low 9 bits).
        case open(mode: UInt32)
    }

    /// Looks at `directory` without following a symlink.
    package static func inspectDirectory(_ directory: String) throws -> DirectoryState {
        var info = stat()
        guard lstat(directory, &info) == 0 else {
            if errno == ENOENT || errno == ENOTDIR { return .missing }
            throw SocketSetupError("cannot inspect \(directory): \(String(cString: strerror(errno)))")
        }
        guard info.st_mode & S_IFMT == S_IFDIR else { return .notADirectory }
        guard info.st_uid == geteuid() else { return .owned(by: info.st_uid) }
        let mode = info.st_mode & 0o777
        return mode & 0o077 == 0 ? .private : .open(mode: mode)
    }

    /// `uid 65534 (nobody)`, or `uid N` when the name is unknown.
    package static func describe(uid: UInt32) -> String {
        guard let entry = getpwuid(uid), let name = entry.pointee.pw_name else { return "uid \(uid)" }
        return "uid \(uid) (\(String(cString: name)))"
    }

    /// Connects to the agent at `path` only when it is this user's own: before connecting, the
    /// socket's directory must be a real directory owned by this user with no group/other
    /// permissions; after connecting, the listening process must run as this user
    /// (`SO_PEERCRED`). Nothing is sent on a refused connection.
    ///
    /// Throws ``UntrustedAgentError`` when the socket is someone else's, ``SocketSetupError``
    /// when nothing answers there.
    package static func connectToOwnAgent(_ path: String) throws -> CInt {
        let directory = PathText.directory(of: path)
        switch try inspectDirectory(directory) {
        case .private: break
        case .missing: throw SocketSetupError("\(directory) does not exist")
        case .notADirectory: throw UntrustedAgentError(socket: path, reason: .directoryNotADirectory(directory))
        case .owned(let uid): throw UntrustedAgentError(socket: path, reason: .directoryOwner(directory, uid: uid))
        case .open(let mode): throw UntrustedAgentError(socket: path, reason: .directoryMode(directory, mode: mode))
        }
        let fd = try connect(path)
        guard let peer = PeerCredentials.of(descriptor: fd) else {
            let message = String(cString: strerror(errno))
            close(fd)
            throw SocketSetupError("cannot read the agent's credentials (SO_PEERCRED): \(message)")
        }
        guard peer.uid == geteuid() else {
            close(fd)
            throw UntrustedAgentError(socket: path, reason: .peer(uid: peer.uid, pid: peer.pid))
        }
        return fd
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

/// The socket belongs to someone else: the client refuses it before sending anything (a fake
/// agent could hand out its own URL and token, or read request bodies).
public struct UntrustedAgentError: RCAgentError, Equatable {
    public enum Reason: Equatable, Sendable {
        case directoryNotADirectory(String)
        case directoryOwner(String, uid: UInt32)
        case directoryMode(String, mode: UInt32)
        case peer(uid: UInt32, pid: Int32)
    }

    public let socket: String
    public let reason: Reason

    public init(socket: String, reason: Reason) {
        self.socket = socket
        self.reason = reason
    }

    public var code: ErrorCode { .untrustedAgent }

    public var message: String {
        let me = "you are uid \(geteuid())"
        switch reason {
        case .directoryNotADirectory(let directory):
            return "refusing the agent socket \(socket): \(directory) is not a real directory (a symlink or a file)"
        case .directoryOwner(let directory, let uid):
            return "refusing the agent socket \(socket): its directory \(directory) is owned by "
                + "\(AgentSocket.describe(uid: uid)), not by you (\(me))"
        case .directoryMode(let directory, let mode):
            return "refusing the agent socket \(socket): its directory \(directory) is mode \(String(mode, radix: 8)), "
                + "so other users can reach it; an agent's directory must be 0700"
        case .peer(let uid, let pid):
            return "refusing the agent on \(socket): it runs as \(AgentSocket.describe(uid: uid)) (pid \(pid)), "
                + "not as you (\(me))"
        }
    }

    public var hint: String? {
        switch reason {
        case .directoryMode(let directory, _):
            return "if \(directory) is yours, run `chmod 700 \(directory)` and start the agent again; nothing was sent"
        default:
            return "another user may be serving a fake agent there; nothing was sent. Point RC_AGENT_SOCK (or "
                + "--socket, or XDG_RUNTIME_DIR) at a directory of your own, and ask an administrator to remove it"
        }
    }
}
