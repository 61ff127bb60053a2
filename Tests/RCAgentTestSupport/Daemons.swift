import Foundation
import RCAgentCore

#if canImport(Glibc)
import Glibc
#endif

/// A long-running process a test starts in the background (`rc-agent daemon`,
/// `systemd-socket-activate …`) and must end, also when the test fails: ``kill()`` is synchronous
/// so a `defer` can call it.
///
/// Spawned with posix_spawn, an EMPTY signal mask and default dispositions: a child of
/// Foundation.Process inherits this test process's mask (nearly every signal blocked), so the
/// SIGTERM/SIGHUP a test sends would never arrive. Descriptors above stderr are closed in the
/// child: a daemon holding another test's pipe would keep that test's `runProcess` waiting.
package final class BackgroundProcess: @unchecked Sendable {
    package let pid: pid_t
    /// stdout and stderr of the process (inside the test's sandbox, so leak scans see it).
    package let logPath: String
    private let lock = NSLock()
    private var status: Int32?

    package init(_ executable: String, _ arguments: [String], environment: [String: String], logPath: String) throws {
        self.logPath = logPath
        pid = try ProcessSpawn.spawn(
            path: executable, argv: [executable] + arguments, environment: environment,
            stdout: .file(path: logPath, append: true), stderr: .sameAsStdout, closeInherited: true)
    }

    /// The exit status (128 + N when killed by signal N), or nil while it runs. Reaps it.
    package var exitStatus: Int32? {
        lock.withLock {
            if status == nil {
                var raw: Int32 = 0
                if waitpid(pid, &raw, WNOHANG) == pid { status = ProcessSpawn.exitStatus(raw) }
            }
            return status
        }
    }

    package func send(_ signal: Int32) {
        if exitStatus == nil { Glibc.kill(pid, signal) }
    }

    /// Waits (polling, at most `seconds`) for the process to exit; nil if it is still running.
    package func waitForExit(seconds: Double) async -> Int32? {
        let deadline = Date().addingTimeInterval(seconds)
        while exitStatus == nil, Date() < deadline {
            try? await Task.sleep(nanoseconds: 50_000_000)
        }
        return exitStatus
    }

    /// SIGKILL (if it still runs) and reap.
    package func kill() {
        guard exitStatus == nil else { return }
        Glibc.kill(pid, SIGKILL)
        lock.withLock {
            var raw: Int32 = 0
            while waitpid(pid, &raw, 0) == -1 && errno == EINTR {}
            status = 128 + SIGKILL
        }
    }

    /// What the process wrote so far.
    package var log: String { (try? String(contentsOfFile: logPath, encoding: .utf8)) ?? "" }
}

/// Agents found by their command line, for the ones a test did not spawn itself (`rc-agent start`,
/// autostart): they are not our children and outlive the test unless stopped.
package enum RunningAgents {
    /// Live (non-zombie) `rc-agent daemon` processes with an argument containing `marker` (a sandbox path).
    package static func pids(mentioning marker: String) -> [pid_t] {
        let entries = (try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? []
        return entries.compactMap { pid_t($0) }.filter { pid in
            guard let data = FileManager.default.contents(atPath: "/proc/\(pid)/cmdline"), isAlive(pid) else {
                return false
            }
            let arguments = data.split(separator: 0).map { String(decoding: $0, as: UTF8.self) }
            return arguments.contains("daemon") && arguments.contains { $0.contains(marker) }
        }
    }

    /// True while `pid` exists and is not a zombie (a daemon orphaned to a non-reaping pid 1 stays one).
    package static func isAlive(_ pid: pid_t) -> Bool {
        guard let stat = try? String(contentsOfFile: "/proc/\(pid)/stat", encoding: .utf8),
            let close = stat.lastIndex(of: ")")
        else { return false }
        return stat[stat.index(after: close)...].trimmingCharacters(in: .whitespaces).first != "Z"
    }

    /// Waits (polling, at most `seconds`) until none of `pids` is alive.
    package static func waitUntilGone(_ pids: [pid_t], seconds: Double = 15) async -> Bool {
        let deadline = Date().addingTimeInterval(seconds)
        while pids.contains(where: isAlive), Date() < deadline {
            try? await Task.sleep(nanoseconds: 50_000_000)
        }
        return !pids.contains(where: isAlive)
    }

    /// SIGKILLs every agent `pids(mentioning:)` finds; returns how many there were.
    @discardableResult
    package static func kill(mentioning marker: String) -> Int {
        let found = pids(mentioning: marker)
        for pid in found { Glibc.kill(pid, SIGKILL) }
        return found.count
    }
}

/// One HTTP exchange with curl over a Unix socket.
package struct SocketReply: Sendable {
    /// curl's run (stdout: the body, then a newline and the HTTP status).
    package let run: CLIResult
    package let status: Int
    package let body: String

    /// The body as a JSON object (nil when it is not one).
    package var json: [String: Any]? {
        (try? JSONSerialization.jsonObject(with: Data(body.utf8))) as? [String: Any]
    }

    /// `error.code` of an error document.
    package var errorCode: String? { (json?["error"] as? [String: Any])?["code"] as? String }
}

/// `curl --unix-socket SOCKET http://localhost TARGET` (optionally run as another user through `setpriv`).
package func curlUnixSocket(
    socket: String, _ target: String, method: String = "GET", headers: [String] = [], asUID uid: UInt32? = nil,
    environment: [String: String]
) async throws -> SocketReply {
    var command = ["/usr/bin/curl", "-sS", "--max-time", "60", "--unix-socket", socket, "-X", method]
    command += headers.flatMap { ["-H", $0] } + ["-w", "\n%{http_code}", "http://localhost" + target]
    if let uid {
        command = ["/usr/bin/setpriv", "--reuid=\(uid)", "--regid=\(uid)", "--clear-groups"] + command
    }
    let run = try await runProcess(command[0], Array(command.dropFirst()), environment: environment)
    let lines = run.stdout.split(separator: "\n", omittingEmptySubsequences: false)
    let status = lines.last.flatMap { Int($0) } ?? 0
    let body = lines.dropLast().joined(separator: "\n")
    return SocketReply(run: run, status: status, body: body)
}

/// A client that connects to the Unix socket at `path`, sends `partial` (a request it never
/// finishes) and then stays silent until closed: a slowloris for one connection.
package final class StalledClient {
    private var fd: CInt

    package init(socket path: String, partial: String) throws {
        fd = Glibc.socket(AF_UNIX, Int32(SOCK_STREAM.rawValue) | Int32(SOCK_CLOEXEC.rawValue), 0)
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        withUnsafeMutableBytes(of: &address.sun_path) { raw in
            for (index, byte) in path.utf8.prefix(raw.count - 1).enumerated() { raw[index] = byte }
        }
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) {
                Glibc.connect(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size))
            }
        }
        let bytes = Array(partial.utf8)
        guard fd >= 0, connected == 0, Glibc.send(fd, bytes, bytes.count, Int32(MSG_NOSIGNAL)) == bytes.count else {
            Glibc.close(fd)
            throw SocketSetupError("cannot connect to \(path): \(String(cString: strerror(errno)))")
        }
    }

    package func close() {
        if fd >= 0 { Glibc.close(fd) }
        fd = -1
    }

    deinit { close() }
}
