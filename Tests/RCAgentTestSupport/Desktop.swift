import Foundation
import Glibc
import RCAgentCore
import Testing

/// Runs tests of this test binary again inside a fresh scripts/with-keyring.sh sandbox: a keyring
/// of their own (to lock it without disturbing other suites) and, with `RC_WITH_XVFB=1` in
/// `environment`, an X display.
///
/// Spawned with posix_spawn and an EMPTY signal mask: a child of Foundation.Process inherits
/// this test process's mask (nearly every signal blocked), so dbus-run-session's SIGTERM would
/// not stop the child's dbus-daemon, which then lingers holding our output open.
package enum IsolatedRun {
    package struct Result: Sendable {
        package let status: Int32
        package let output: String
    }

    /// The repository's root (this file is Tests/RCAgentTestSupport/Desktop.swift).
    package static let repository = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    /// Runs the tests matching `filter` with `environment` added (a marker the tests check).
    package static func run(filter: String, environment extra: [String: String]) -> Result {
        let script = repository.appendingPathComponent("scripts/with-keyring.sh").path
        let testBinary = ProcessInfo.processInfo.arguments[0]
        var environment = ProcessInfo.processInfo.environment
        // A new private bus and keyring: with-keyring.sh sets these up itself when they are unset.
        for name in ["RC_SANDBOX_INNER", "RC_SANDBOX", "DBUS_SESSION_BUS_ADDRESS", "GNOME_KEYRING_CONTROL"] {
            environment.removeValue(forKey: name)
        }
        environment.merge(extra) { $1 }
        let logPath = FileManager.default.temporaryDirectory
            .appendingPathComponent("rc-agent-isolated-\(UUID().uuidString).log").path
        defer { try? FileManager.default.removeItem(atPath: logPath) }

        let arguments: [String] = [script, testBinary, "--testing-library", "swift-testing", "--filter", filter]
        let pid: pid_t
        do {
            pid = try ProcessSpawn.spawn(
                path: script, argv: arguments, environment: environment, stdout: .file(path: logPath, append: false),
                stderr: .sameAsStdout)
        } catch {
            return Result(status: -1, output: "\(error)")
        }
        var status: Int32 = 0
        while waitpid(pid, &status, 0) == -1 && errno == EINTR {}
        let output = (try? String(contentsOfFile: logPath, encoding: .utf8)) ?? ""
        return Result(status: status & 0x7f == 0 ? ProcessSpawn.exitStatus(status) : -1, output: output)
    }
}

/// The X session of the desktop tests (scripts/with-keyring.sh with `RC_WITH_XVFB=1`): windows
/// found and driven with xdotool, screenshots with ImageMagick's `import`.
package enum Desktop {
    /// Which isolated run this process is, if any: `x11` (Xvfb, gnome-keyring's real prompter)
    /// or `headless` (a bus and a keyring, no display).
    package static let session = ProcessInfo.processInfo.environment["RC_TEST_DESKTOP"]

    /// The title of gnome-keyring's unlock prompt (gcr-prompter).
    package static let unlockPromptTitle = "Unlock Login Keyring"

    /// Where screenshots go: `.build/test-artefacts/desktop` in the repository.
    package static var artefacts: String {
        let path = IsolatedRun.repository.appendingPathComponent(".build/test-artefacts/desktop").path
        try? FileManager.default.createDirectory(atPath: path, withIntermediateDirectories: true)
        return path
    }

    /// The ids of the visible windows whose title matches `name` (none when there is none).
    package static func windows(named name: String) async throws -> [String] {
        let result = try await runProcess(
            "/usr/bin/xdotool", ["search", "--onlyvisible", "--name", name], environment: ProcessInfo.processInfo.environment)
        return result.stdout.split(separator: "\n").map(String.init)
    }

    /// Polls (every 100 ms, at most `attempts` times) until a window titled `name` shows; fails
    /// with `context()` when none does.
    package static func waitForWindow(
        named name: String, attempts: Int = 600, context: () -> String = { "" }
    ) async throws -> String {
        for _ in 0..<attempts {
            if let window = try await windows(named: name).first { return window }
            try await Task.sleep(nanoseconds: 100_000_000)
        }
        throw DesktopFailure("no window titled '\(name)' appeared\n\(context())")
    }

    /// `xdotool ARGS`, which must succeed.
    package static func xdotool(_ arguments: [String]) async throws {
        let result = try await runProcess("/usr/bin/xdotool", arguments, environment: ProcessInfo.processInfo.environment)
        try #require(result.status == 0, "xdotool \(arguments.joined(separator: " ")): \(result)")
    }

    /// Gives `window` the keyboard and types `text` (never printed), then presses `key`.
    package static func type(_ text: String?, then key: String, into window: String) async throws {
        try await xdotool(["windowfocus", "--sync", window])
        if let text { try await xdotool(["type", "--delay", "20", text]) }
        try await xdotool(["key", key])
    }

    /// A screenshot of the whole screen, saved as `name`.png among the artefacts; returns its path.
    @discardableResult
    package static func screenshot(_ name: String) async throws -> String {
        let path = artefacts + "/\(name).png"
        let result = try await runProcess(
            "/usr/bin/import", ["-window", "root", path], environment: ProcessInfo.processInfo.environment)
        try #require(result.status == 0, "import: \(result)")
        return path
    }
}

extension Sandbox {
    /// `rc-agent ARGS` under `script`: a pseudo-terminal on stdin, stdout and stderr, as a person
    /// at a terminal (or in an SSH session) runs it; both streams end up in `stdout`.
    package func rcAgentInPseudoTerminal(_ arguments: [String], env extra: [String: String] = [:], unset: [String] = [])
        async throws -> CLIResult
    {
        var env = environment.merging(extra) { $1 }
        for name in unset { env[name] = nil }
        env["PATH"] = Binaries.directory.path + ":" + (env["PATH"] ?? "/usr/bin:/bin")
        let command = (["rc-agent"] + arguments).map(shellQuoted).joined(separator: " ")
        return try await runProcess("/usr/bin/script", ["-qec", command, "/dev/null"], environment: env)
    }
}

/// `word` as one word for /bin/sh (as it is when nothing in it is special to the shell).
package func shellQuoted(_ word: String) -> String {
    let plain = !word.isEmpty && word.allSatisfy { $0.isLetter || $0.isNumber || "._/:=-".contains($0) }
    return plain ? word : "'" + word.replacingOccurrences(of: "'", with: "'\\''") + "'"
}

/// A desktop test step that did not happen (a window that never showed, a command that never ended).
package struct DesktopFailure: Error, CustomStringConvertible {
    package let description: String
    package init(_ description: String) { self.description = description }
}

/// A command run by a person: an xterm on the test display, running the command under `script`
/// (a pseudo-terminal whose output is also kept in a file), its exit status written when it ends.
package final class TerminalWindow: Sendable {
    private let directory: String
    private let xterm: BackgroundProcess
    /// What the terminal showed (stdout and stderr, `\r\n` line ends).
    package var transcript: String { (try? String(contentsOfFile: directory + "/typescript", encoding: .utf8)) ?? "" }
    /// What the terminal showed and what xterm itself said, for a failure's message.
    package var diagnosis: String { "the terminal showed:\n\(transcript)\nxterm said:\n\(xterm.log)" }
    /// The command's exit status once it ended.
    package var exitStatus: Int32? {
        (try? String(contentsOfFile: directory + "/status", encoding: .utf8))
            .flatMap { Int32($0.trimmingCharacters(in: .whitespacesAndNewlines)) }
    }

    /// Opens the terminal and runs `rc-agent ARGS` in it, standard input from a private file
    /// holding `stdin` when given (stderr stays the terminal).
    package init(rcAgent arguments: [String], stdin: String? = nil, environment: [String: String]) throws {
        let base = environment["RC_SANDBOX"] ?? NSTemporaryDirectory()
        directory = base + "/term-" + String(UUID().uuidString.prefix(8)).lowercased()
        try FileManager.default.createDirectory(
            atPath: directory, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        var command = (["rc-agent"] + arguments).map(shellQuoted).joined(separator: " ")
        if let stdin {
            let input = directory + "/stdin"
            guard FileManager.default.createFile(atPath: input, contents: Data(stdin.utf8), attributes: [.posixPermissions: 0o600])
            else { throw DesktopFailure("cannot write \(input)") }
            command += " < " + shellQuoted(input)
        }
        // The command line is printed first so the terminal (and its screenshot) shows what runs.
        let shell = "printf '$ %s\\n' \(shellQuoted(command)); "
            + "script -qfec \(shellQuoted(command)) \(shellQuoted(directory + "/typescript")); "
            + "echo $? > \(shellQuoted(directory + "/status.tmp")); "
            + "mv \(shellQuoted(directory + "/status.tmp")) \(shellQuoted(directory + "/status"))"
        var env = environment
        env["PATH"] = Binaries.directory.path + ":" + (environment["PATH"] ?? "/usr/bin:/bin")
        xterm = try BackgroundProcess(
            "/usr/bin/xterm",
            ["-geometry", "96x22+40+40", "-fa", "DejaVu Sans Mono", "-fs", "11", "-title", "rc-agent",
             "-e", "/bin/sh", "-c", shell],
            environment: env, logPath: directory + "/xterm.log")
    }

    /// Waits (polling, bounded) until the command ended; returns its exit status.
    package func waitForExit(attempts: Int = 600) async throws -> Int32 {
        for _ in 0..<attempts {
            if let status = exitStatus { return status }
            try await Task.sleep(nanoseconds: 100_000_000)
        }
        throw DesktopFailure("the command in the terminal did not end; \(diagnosis)")
    }

    /// Closes the terminal and removes the transcript (it may hold a token).
    package func remove() {
        xterm.kill()
        try? FileManager.default.removeItem(atPath: directory)
    }
}
