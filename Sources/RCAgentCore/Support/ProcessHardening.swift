import Glibc
import Synchronization

/// Process hardening for every rc-agent process that holds a secret or a token: no core dumps,
/// not dumpable (no ptrace, `/proc/PID/mem` or `/proc/PID/environ` for other processes of the
/// same user without CAP_SYS_PTRACE), so secrets in memory stay there.
public enum ProcessHardening {
    /// How far the core-size limit goes down.
    public enum CoreLimit: Sendable {
        /// Soft and hard limit 0: nothing in this process can raise it again (the agent).
        case zeroForGood
        /// Soft limit 0, hard limit kept, the soft one remembered: a command that later runs a
        /// user's program (`rc-agent exec`) puts it back with ``restoreCoreLimitForExec()``.
        case zeroUntilExec
    }

    /// Sets the core-size limit to 0 and `PR_SET_DUMPABLE` to 0. Both steps run whatever the
    /// other's outcome; returns one line per step that failed (empty when both worked), for the
    /// caller to log or print.
    @discardableResult
    public static func apply(_ coreLimit: CoreLimit) -> [String] {
        var failures: [String] = []
        if let failure = lowerCoreLimit(coreLimit) { failures.append(failure) }
        if let failure = setNotDumpable() { failures.append(failure) }
        return failures
    }

    /// Puts back the soft core-size limit ``apply(_:)`` lowered with ``CoreLimit/zeroUntilExec``,
    /// so the program about to replace this process starts with the user's own limit. (The
    /// kernel resets "dumpable" on exec by itself.)
    public static func restoreCoreLimitForExec() {
        guard var limit = savedCoreLimit.withLock({ $0 }) else { return }
        _ = setrlimit(__rlimit_resource_t(RLIMIT_CORE.rawValue), &limit)
    }

    private static let savedCoreLimit = Mutex<rlimit?>(nil)

    private static func lowerCoreLimit(_ coreLimit: CoreLimit) -> String? {
        let resource = __rlimit_resource_t(RLIMIT_CORE.rawValue)
        var current = rlimit()
        guard getrlimit(resource, &current) == 0 else { return "getrlimit(RLIMIT_CORE): \(errorText())" }
        var limit = rlimit(rlim_cur: 0, rlim_max: coreLimit == .zeroForGood ? 0 : current.rlim_max)
        guard setrlimit(resource, &limit) == 0 else { return "setrlimit(RLIMIT_CORE, 0): \(errorText())" }
        if coreLimit == .zeroUntilExec { savedCoreLimit.withLock { $0 = current } }
        return nil
    }

    /// `prctl` is variadic, which Swift cannot call; it is looked up and called through a fixed
    /// five-argument signature, the way its system call takes them.
    private static func setNotDumpable() -> String? {
        typealias Prctl = @convention(c) (CInt, UInt, UInt, UInt, UInt) -> CInt
        guard let handle = dlopen(nil, RTLD_NOW), let symbol = dlsym(handle, "prctl") else {
            return "prctl(PR_SET_DUMPABLE, 0): prctl not found"
        }
        let prctl = unsafeBitCast(symbol, to: Prctl.self)
        let PR_SET_DUMPABLE: CInt = 4
        guard prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) == 0 else { return "prctl(PR_SET_DUMPABLE, 0): \(errorText())" }
        return nil
    }

    private static func errorText() -> String { String(cString: strerror(errno)) }
}
