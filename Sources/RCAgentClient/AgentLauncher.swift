import FoundationEssentials
import RCAgentCore

#if canImport(Glibc)
import Glibc
#endif

/// Starting a detached agent (`rc-agent start`, and the autostart of `token`, `exec`, `status`).
public enum AgentLauncher {
    /// True unless `--no-autostart` was given or `RC_AGENT_NO_AUTOSTART=1`.
    public static func autostartEnabled(noAutostartFlag: Bool, environment: [String: String]) -> Bool {
        !noAutostartFlag && environment["RC_AGENT_NO_AUTOSTART"] != "1"
    }

    /// A client for the agent on `socketPath`; when nothing answers and `autostart` is true, a
    /// detached agent is started first (like gpg-agent). Throws `agent_unreachable` otherwise, and
    /// ``UntrustedAgentError`` when the socket is another user's.
    public static func connect(socketPath: String, autostart: Bool, settings: Settings) async throws -> AgentClient {
        let client = AgentClient(socketPath: socketPath)
        if try await client.isAlive() { return client }
        guard autostart else {
            throw AgentError.unreachable(socket: socketPath, detail: "nothing is listening (autostart is off)")
        }
        try await start(socketPath: socketPath, settings: settings)
        return client
    }

    /// Starts a detached `rc-agent daemon` on `socketPath` unless an agent already answers there,
    /// and waits (≤ 2 s) until it answers. Returns false when one was already running.
    ///
    /// The daemon runs in a session of its own (no controlling terminal), with stdin/stdout on
    /// /dev/null and its log appended to `STATE_DIR/agent.log` (which never holds a token), which
    /// it rotates to `agent.log.1` past 1 MiB.
    @discardableResult
    public static func start(socketPath: String, settings: Settings, waitSeconds: Double = 2) async throws -> Bool {
        let client = AgentClient(socketPath: socketPath)
        if try await client.isAlive() { return false }
        let logPath = settings.stateDirectory + "/agent.log"
        let pid = try spawnDetached(
            arguments: ["daemon", "--socket", socketPath, "--config", settings.configPath, "--log-file", logPath],
            logPath: logPath)
        let deadline = Date().addingTimeInterval(waitSeconds)
        while Date() < deadline {
            if try await client.isAlive() { return true }
            // kill(pid, 0) fails once the daemon has exited (it is reaped by init, not by us).
            if kill(pid, 0) != 0 { break }
            try await Task.sleep(nanoseconds: 20_000_000)
        }
        if try await client.isAlive() { return true }
        throw AgentError(
            .agentUnreachable, message: "the agent did not start on \(socketPath)" + logTail(logPath),
            hint: "run `rc-agent daemon --socket \(socketPath)` in the foreground to see why")
    }

    /// Asks the agent on `socketPath` to exit and waits (≤ `waitSeconds`) until its socket is gone.
    /// Returns false when no agent was running.
    @discardableResult
    public static func stop(socketPath: String, waitSeconds: Double = 3) async throws -> Bool {
        do {
            try await AgentClient(socketPath: socketPath, timeout: 5).shutdown()
        } catch let error as AgentError where error.code == .agentUnreachable {
            return false
        }
        let deadline = Date().addingTimeInterval(waitSeconds)
        while Date() < deadline {
            if AgentSocket.probe(socketPath) != .live { return true }
            try await Task.sleep(nanoseconds: 20_000_000)
        }
        throw AgentError(
            .agentUnreachable, message: "the agent on \(socketPath) did not exit within \(Int(waitSeconds)) s",
            hint: "it may be finishing a request; try again, or end it with `kill` (its pid is in `rc-agent status`)")
    }

    /// Spawns `rc-agent ARGS` through `sh -c '… &'` so it is not our child (no zombie after our
    /// `exec`), in a new session. Returns the daemon's pid.
    private static func spawnDetached(arguments: [String], logPath: String) throws -> pid_t {
        let executable = try currentExecutable()
        let logDirectory = PathText.directory(of: logPath)
        try FileManager.default.createDirectory(
            atPath: logDirectory, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        let logFD = open(logPath, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0o600)
        guard logFD >= 0 else {
            throw AgentError(.agentUnreachable, message: "cannot open \(logPath): \(String(cString: strerror(errno)))")
        }
        defer { close(logFD) }
        var pipeFDs: [CInt] = [0, 0]
        guard pipe(&pipeFDs) == 0 else {
            throw AgentError(.agentUnreachable, message: "pipe: \(String(cString: strerror(errno)))")
        }

        for fd in pipeFDs { _ = fcntl(fd, F_SETFD, FD_CLOEXEC) }

        // "$0" "$@" runs the daemon with the arguments as given: nothing is interpreted by the shell.
        let script = "\"$0\" \"$@\" >/dev/null & echo $!"
        var environment = ProcessInfo.processInfo.environment
        for key in ["LISTEN_PID", "LISTEN_FDS", "LISTEN_FDNAMES", "NOTIFY_SOCKET"] { environment[key] = nil }
        // The daemon must not keep descriptors this process inherited: whoever waits for them to close
        // (a `$(…)`, a CI step, Foundation's Process) would wait as long as the agent lives.
        let inherited = markInheritedCloseOnExec()
        let spawned = Result { () throws(ProcessSpawn.Failure) in
            try ProcessSpawn.spawn(
                path: "/bin/sh", argv: ["sh", "-c", script, executable] + arguments, environment: environment,
                stdout: .descriptor(pipeFDs[1]), stderr: .descriptor(logFD), newSession: true)
        }
        for fd in inherited { _ = fcntl(fd, F_SETFD, fcntl(fd, F_GETFD) & ~FD_CLOEXEC) }
        close(pipeFDs[1])
        defer { close(pipeFDs[0]) }
        let shellPID: pid_t
        switch spawned {
        case .success(let pid): shellPID = pid
        case .failure(let failure): throw AgentError(.agentUnreachable, message: "cannot start the agent: \(failure)")
        }
        var output: [UInt8] = []
        var buffer = [UInt8](repeating: 0, count: 64)
        while true {
            let count = buffer.withUnsafeMutableBytes { read(pipeFDs[0], $0.baseAddress, $0.count) }
            if count > 0 { output += buffer[0..<count] } else if count == 0 || errno != EINTR { break }
        }
        var status: CInt = 0
        while waitpid(shellPID, &status, 0) == -1 && errno == EINTR {}
        guard let pid = pid_t(String(decoding: output, as: UTF8.self).trimmingBlanksAndNewlines())
        else {
            throw AgentError(.agentUnreachable, message: "cannot start the agent (no pid from the launcher)")
        }
        return pid
    }

    /// Sets close-on-exec on every open descriptor above stderr that lacks it; returns those, so the
    /// caller can clear the flag again after spawning (`rc-agent exec` passes descriptors on).
    private static func markInheritedCloseOnExec() -> [CInt] {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: "/proc/self/fd")) ?? []
        var marked: [CInt] = []
        for fd in names.compactMap({ CInt($0) }) where fd > 2 {
            let flags = fcntl(fd, F_GETFD)
            if flags >= 0, flags & FD_CLOEXEC == 0, fcntl(fd, F_SETFD, flags | FD_CLOEXEC) == 0 { marked.append(fd) }
        }
        return marked
    }

    /// The running rc-agent binary.
    static func currentExecutable() throws -> String {
        var buffer = [CChar](repeating: 0, count: Int(PATH_MAX) + 1)
        let count = readlink("/proc/self/exe", &buffer, buffer.count - 1)
        guard count > 0 else {
            throw AgentError(.agentUnreachable, message: "cannot find the rc-agent executable (/proc/self/exe)")
        }
        return String(decoding: buffer[0..<count].map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    private static func logTail(_ path: String) -> String {
        guard let text = try? String(contentsOfFile: path, encoding: .utf8) else { return "" }
        let lines = text.split(separator: "\n").suffix(5)
        return lines.isEmpty ? "" : "; its log (\(path)) ends with:\n  " + lines.joined(separator: "\n  ")
    }
}

