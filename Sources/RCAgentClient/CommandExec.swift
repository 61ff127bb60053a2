import Glibc
import RCAgentCore

/// Replaces this process with a command (`rc-agent exec`).
public enum CommandExec {
    /// The command could not be run; `status` is what a shell would exit with (126/127).
    public struct Failure: Error, Sendable {
        public let status: Int32
        public let message: String
    }

    /// Runs `command` (searched on PATH) in place of this process with `environment` added and the
    /// variables in `removing` taken out.
    ///
    /// `exec` rather than spawn-and-wait: the command keeps rc-agent's pid, so every signal sent
    /// to it (terminal Ctrl-C, `kill`, systemd) reaches the command itself with nothing to
    /// forward or lose, stdin/stdout/stderr are the same descriptors, and its exit status is the
    /// one the caller sees. Signal dispositions, the mask and the core-size limit are reset first;
    /// the `removing` variables are taken out of the environment the command gets.
    public static func replaceProcess(
        command: String, arguments: [String], environment: [String: String], removing: [String] = []
    ) -> Failure {
        for key in removing { unsetenv(key) }
        for (key, value) in environment { setenv(key, value, 1) }
        for number: Int32 in 1..<32 where number != SIGKILL && number != SIGSTOP { signal(number, SIG_DFL) }
        var empty = sigset_t()
        sigemptyset(&empty)
        sigprocmask(SIG_SETMASK, &empty, nil)
        ProcessHardening.restoreCoreLimitForExec()
        let argv = [command] + arguments
        var pointers = argv.map { strdup($0) } + [nil]
        defer { for pointer in pointers { free(pointer) } }
        _ = pointers.withUnsafeMutableBufferPointer { execvp(command, $0.baseAddress!) }
        let code = errno
        return Failure(
            status: code == ENOENT ? 127 : 126, message: "cannot run \(command): \(String(cString: strerror(code)))")
    }
}
