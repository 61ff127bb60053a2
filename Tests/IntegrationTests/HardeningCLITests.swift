import Foundation
import RCAgentCore
import RCAgentTestSupport
import RiskCloudStandIn
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// Process hardening as another process of the same user sees it: the kernel makes the files in
/// a non-dumpable process's `/proc/PID` (`environ`, `mem`, `status`…) owned by root, so a process
/// running as a non-root user whose `/proc/PID/environ` is root-owned has `PR_SET_DUMPABLE` 0
/// (Linux has no `Dumpable:` line in `/proc/PID/status`; `CoreDumping:` is something else). As
/// root the processes run as uid 65534 (`setpriv`), otherwise as the test's own user.
@Suite(.serialized) struct HardeningCLITests {
    /// A login waiting at its hidden secret prompt (on a pseudo-terminal from `script`).
    @Test func aLoginWaitingAtItsPromptIsNotDumpable() async throws {
        let home = try UnprivilegedHome()
        defer { home.remove() }
        let profile = "hard-" + String(UUID().uuidString.prefix(6)).lowercased()
        let login = [Binaries.rcAgent, "login", "--config", home.path + "/config.toml", "--profile", profile,
                     "--url", "http://127.0.0.1:9", "--client-id", "someone"]
        let shell = (home.runAs + login).map(ShellWord.quote).joined(separator: " ")
        let terminal = try await PseudoTerminalProcess(command: shell, environment: home.environment)
        defer { terminal.stop() }
        let shown = await terminal.waitForOutput(containing: "Client Secret")
        #expect(shown.contains("Client Secret (input hidden)"), "login did not reach its prompt: \(shown)")
        let pid = try #require(ProcessTable.pids(withArguments: ["--profile", profile]).first, "no login process")
        let owner = try #require(ProcessTable.procOwner(pid))
        #expect(ProcessTable.realUID(pid) == home.uid, "the login runs as uid \(home.uid)")
        #expect(owner == 0, "/proc/\(pid)/environ is owned by uid \(owner): the waiting login is dumpable")
    }

    /// The agent, once its socket exists.
    @Test func theAgentIsNotDumpable() async throws {
        let home = try UnprivilegedHome()
        defer { home.remove() }
        let socket = home.path + "/run/agent.sock"
        let agent = try await ChildProcess(
            home.runAs + [Binaries.rcAgent, "daemon", "--socket", socket, "--config", home.path + "/config.toml"],
            environment: home.environment)
        defer { agent.kill() }
        let listening = try await agent.waitUntil { AgentSocket.probe(socket) != .absent }
        #expect(listening, "the agent never created \(socket)")
        let pid = try #require(ProcessTable.pids(withArguments: ["daemon", "--socket", socket]).first, "no agent process")
        #expect(ProcessTable.realUID(pid) == home.uid)
        let owner = try #require(ProcessTable.procOwner(pid))
        #expect(owner == 0, "/proc/\(pid)/environ is owned by uid \(owner): the agent is dumpable")
    }
}

/// A private directory for a process run as a non-root user (uid 65534 when the tests run as root).
struct UnprivilegedHome {
    let path: String
    let uid: UInt32
    /// The command prefix that switches to `uid` (empty when the test is not root).
    let runAs: [String]
    let environment: [String: String]

    init() throws {
        let root = getuid() == 0
        uid = root ? 65534 : getuid()
        path = "/tmp/rc-hard-" + String(UUID().uuidString.prefix(8)).lowercased()
        for directory in [path, path + "/run", path + "/state", path + "/config"] {
            try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
            chmod(directory, 0o700)
            if root { chown(directory, uid, uid) }
        }
        runAs = root ? ["/usr/bin/setpriv", "--reuid=65534", "--regid=65534", "--clear-groups", "--"] : []
        environment = [
            "PATH": "/usr/bin:/bin", "HOME": path, "XDG_CONFIG_HOME": path + "/config",
            "XDG_STATE_HOME": path + "/state", "XDG_RUNTIME_DIR": path + "/run", "RC_AGENT_NO_AUTOSTART": "1",
            // No keyring: neither process gets as far as needing one.
            "DBUS_SESSION_BUS_ADDRESS": "unix:path=" + path + "/no-bus", "TERM": "dumb",
        ]
    }

    func remove() { try? FileManager.default.removeItem(atPath: path) }
}

/// `sh` quoting for a command line handed to `script -c`.
enum ShellWord {
    static func quote(_ word: String) -> String { "'" + word.replacingOccurrences(of: "'", with: "'\\''") + "'" }
}

/// A command on a pseudo-terminal (`script -q -f -c COMMAND /dev/null`), its terminal output
/// collected; stdin is a pipe kept open, so a prompt waits.
final class PseudoTerminalProcess: @unchecked Sendable {
    private let child: ChildProcess
    private let collected = NSLock()
    private var text = ""

    init(command: String, environment: [String: String]) async throws {
        child = try await ChildProcess(
            ["/usr/bin/script", "-q", "-f", "-c", command, "/dev/null"], environment: environment, stdin: .pipe,
            stdout: .pipe, stderr: .stdout)
        let handle = child.output
        Thread.detachNewThread { [self] in
            while true {
                let chunk = handle.availableData
                if chunk.isEmpty { break }
                collected.withLock { text += String(decoding: chunk, as: UTF8.self) }
            }
        }
    }

    /// The output so far once it contains `marker`, or what there is after 15 s.
    func waitForOutput(containing marker: String) async -> String {
        for _ in 0..<750 {
            let now = collected.withLock { text }
            if now.contains(marker) || !child.isRunning { return now }
            try? await Task.sleep(nanoseconds: 20_000_000)
        }
        return collected.withLock { text }
    }

    func stop() {
        child.kill()
        try? child.input.close()
    }
}

/// Reading `/proc` for the processes a test started.
enum ProcessTable {
    /// Pids of rc-agent processes whose argv contains `arguments` in this order.
    static func pids(withArguments arguments: [String]) -> [pid_t] {
        let names = (try? FileManager.default.contentsOfDirectory(atPath: "/proc")) ?? []
        return names.compactMap(pid_t.init).filter { pid in
            guard let data = FileManager.default.contents(atPath: "/proc/\(pid)/cmdline") else { return false }
            let argv = data.split(separator: 0).map { String(decoding: $0, as: UTF8.self) }
            guard argv.first == Binaries.rcAgent else { return false }
            return argv.indices.contains { start in
                argv.dropFirst(start).starts(with: arguments)
            }
        }
    }

    /// The owner of `/proc/PID/environ` (root for a non-dumpable process).
    static func procOwner(_ pid: pid_t) -> UInt32? {
        var info = stat()
        guard stat("/proc/\(pid)/environ", &info) == 0 else { return nil }
        return info.st_uid
    }

    /// The real uid from `/proc/PID/status`.
    static func realUID(_ pid: pid_t) -> UInt32? {
        guard let text = try? String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8),
            let line = text.split(separator: "\n").first(where: { $0.hasPrefix("Uid:") })
        else { return nil }
        return line.split(whereSeparator: { $0 == "\t" || $0 == " " }).dropFirst().first.flatMap { UInt32($0) }
    }
}
