import Glibc

/// `posix_spawn` as rc-agent, rc-bench and the tests start processes: stdin on /dev/null or a
/// descriptor, the other streams set explicitly, an EMPTY signal mask and default dispositions. A
/// child inherits its parent's mask, and a test runner (or Foundation's Process) blocks nearly
/// every signal: the SIGTERM or SIGHUP sent to such a child would never arrive.
public enum ProcessSpawn {
    /// Where one of the child's output streams goes.
    public enum Output: Sendable {
        case devNull
        /// A file opened write-only and created 0600; appended to, or truncated first.
        case file(path: String, append: Bool)
        /// A descriptor of this process.
        case descriptor(CInt)
        /// Wherever the child's stdout goes (for stderr).
        case sameAsStdout
    }

    /// posix_spawn failed; `description` names the program and the reason.
    public struct Failure: Error, CustomStringConvertible, Sendable {
        public let description: String
    }

    /// Starts `path` with `argv` (its `argv[0]` included) and returns its pid.
    ///
    /// - Parameters:
    ///   - environment: the child's whole environment; nil passes this process's on.
    ///   - stdin: a descriptor of this process to be the child's stdin; nil for /dev/null.
    ///   - newSession: the child leads a session of its own (no controlling terminal).
    ///   - closeInherited: descriptors above stderr are closed in the child, so it holds no one
    ///     else's pipe open (glibc ≥ 2.34; ignored where it is missing).
    public static func spawn(
        path: String, argv: [String], environment: [String: String]? = nil, stdin: CInt? = nil, stdout: Output = .devNull,
        stderr: Output = .devNull, newSession: Bool = false, closeInherited: Bool = false
    ) throws(Failure) -> pid_t {
        var attributes = posix_spawnattr_t()
        posix_spawnattr_init(&attributes)
        defer { posix_spawnattr_destroy(&attributes) }
        var none = sigset_t()
        var all = sigset_t()
        sigemptyset(&none)
        sigfillset(&all)
        posix_spawnattr_setsigmask(&attributes, &none)
        posix_spawnattr_setsigdefault(&attributes, &all)
        let setsid: Int32 = 0x80  // POSIX_SPAWN_SETSID, glibc ≥ 2.26; hidden from Swift behind __USE_GNU
        posix_spawnattr_setflags(
            &attributes, Int16(POSIX_SPAWN_SETSIGMASK | POSIX_SPAWN_SETSIGDEF | (newSession ? setsid : 0)))

        var actions = posix_spawn_file_actions_t()
        posix_spawn_file_actions_init(&actions)
        defer { posix_spawn_file_actions_destroy(&actions) }
        if let stdin {
            posix_spawn_file_actions_adddup2(&actions, stdin, 0)
        } else {
            posix_spawn_file_actions_addopen(&actions, 0, "/dev/null", O_RDONLY, 0)
        }
        add(stdout, as: 1, to: &actions)
        add(stderr, as: 2, to: &actions)
        if closeInherited { closeFrom3(&actions) }

        let cArgv = argv.map { strdup($0) }
        let cEnvironment = environment?.map { strdup("\($0.key)=\($0.value)") }
        defer { (cArgv + (cEnvironment ?? [])).forEach { free($0) } }
        var pid: pid_t = 0
        let result: Int32
        if let cEnvironment {
            result = posix_spawn(&pid, path, &actions, &attributes, cArgv + [nil], cEnvironment + [nil])
        } else {
            result = posix_spawn(&pid, path, &actions, &attributes, cArgv + [nil], environ)
        }
        guard result == 0 else { throw Failure(description: "posix_spawn \(path): \(String(cString: strerror(result)))") }
        return pid
    }

    private static func add(_ output: Output, as fd: CInt, to actions: inout posix_spawn_file_actions_t) {
        switch output {
        case .devNull: posix_spawn_file_actions_addopen(&actions, fd, "/dev/null", O_WRONLY, 0)
        case .file(let path, let append):
            posix_spawn_file_actions_addopen(&actions, fd, path, O_WRONLY | O_CREAT | (append ? O_APPEND : O_TRUNC), 0o600)
        case .descriptor(let source): posix_spawn_file_actions_adddup2(&actions, source, fd)
        case .sameAsStdout: posix_spawn_file_actions_adddup2(&actions, 1, fd)
        }
    }

    /// `posix_spawn_file_actions_addclosefrom_np(actions, 3)` (glibc 2.34), looked up at run time:
    /// Swift's Glibc module does not declare it.
    private static func closeFrom3(_ actions: inout posix_spawn_file_actions_t) {
        typealias AddCloseFrom = @convention(c) (UnsafeMutablePointer<posix_spawn_file_actions_t>, CInt) -> CInt
        guard let handle = dlopen(nil, RTLD_NOW), let symbol = dlsym(handle, "posix_spawn_file_actions_addclosefrom_np")
        else { return }
        _ = unsafeBitCast(symbol, to: AddCloseFrom.self)(&actions, 3)
    }

    /// The exit status of a `waitpid` status word: the code, or 128 + N when killed by signal N.
    /// (WIFEXITED and friends are macros Swift does not import.)
    public static func exitStatus(_ raw: Int32) -> Int32 {
        raw & 0x7f == 0 ? (raw >> 8) & 0xff : 128 + (raw & 0x7f)
    }
}
