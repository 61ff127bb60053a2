import Glibc

/// Process hardening for the daemon: no core dumps, not dumpable (no ptrace/`/proc/PID/mem` by
/// other processes of the same user without CAP_SYS_PTRACE), so tokens in memory stay there.
public enum ProcessHardening {
    /// Sets `RLIMIT_CORE` to 0 and `PR_SET_DUMPABLE` to 0. Returns false if either failed.
    @discardableResult
    public static func apply() -> Bool {
        var limit = rlimit(rlim_cur: 0, rlim_max: 0)
        let coreOK = setrlimit(__rlimit_resource_t(RLIMIT_CORE.rawValue), &limit) == 0
        return coreOK && setNotDumpable()
    }

    /// `prctl` is variadic, which Swift cannot call; it is looked up and called through a fixed
    /// five-argument signature, the way its system call takes them.
    private static func setNotDumpable() -> Bool {
        typealias Prctl = @convention(c) (CInt, UInt, UInt, UInt, UInt) -> CInt
        guard let handle = dlopen(nil, RTLD_NOW), let symbol = dlsym(handle, "prctl") else { return false }
        let prctl = unsafeBitCast(symbol, to: Prctl.self)
        let PR_SET_DUMPABLE: CInt = 4
        return prctl(PR_SET_DUMPABLE, 0, 0, 0, 0) == 0
    }
}
