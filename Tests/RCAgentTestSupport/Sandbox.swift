import Foundation
import Testing

/// What a finished command printed and how it ended.
package struct CLIResult: Sendable, CustomStringConvertible {
    package var status: Int32
    package var stdout: String
    package var stderr: String
    package var description: String { "exit \(status)\n--- stdout\n\(stdout)--- stderr\n\(stderr)" }
}

/// The built binaries, next to the test bundle in the build folder.
package enum Binaries {
    package static let directory: URL = URL(fileURLWithPath: "/proc/self/exe").resolvingSymlinksInPath()
        .deletingLastPathComponent()
    package static var rcAgent: String { directory.appendingPathComponent("rc-agent").path }
    package static var standIn: String { directory.appendingPathComponent("rc-standin").path }
}

/// Every value a test handed to the product that must never show up in output or files.
/// Tests register secrets here; ``Sandbox/assertNoLeaks`` scans for them.
package final class LeakWatch: @unchecked Sendable {
    private let lock = NSLock()
    private var values: Set<String> = []
    package func watch(_ value: String) { lock.withLock { _ = values.insert(value) } }
    package var all: Set<String> { lock.withLock { values } }
}

/// A private config/state/runtime tree for one test, sharing the suite's private keyring.
///
/// The suite runs under scripts/with-keyring.sh, so DBUS_SESSION_BUS_ADDRESS points at a private
/// bus with an unlocked gnome-keyring; each sandbox uses its own profile names and directories.
package struct Sandbox: Sendable {
    package let root: String
    package let environment: [String: String]
    package let leaks = LeakWatch()

    /// Creates the tree. Short paths: the socket path must fit in sun_path (108 bytes).
    package init() throws {
        let base = ProcessInfo.processInfo.environment["RC_SANDBOX"] ?? NSTemporaryDirectory()
        let root = base + "/it-" + String(UUID().uuidString.prefix(8)).lowercased()
        for dir in ["config", "state", "run"] {
            try FileManager.default.createDirectory(
                atPath: root + "/" + dir, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        }
        self.root = root
        var env = ProcessInfo.processInfo.environment
        for key in env.keys where key.hasPrefix("RC_") && key != "RC_SANDBOX" && key != "RC_TEST_KEYRING_PASSWORD" {
            env[key] = nil
        }
        env["XDG_CONFIG_HOME"] = root + "/config"
        env["XDG_STATE_HOME"] = root + "/state"
        env["XDG_RUNTIME_DIR"] = root + "/run"
        env["RC_AGENT_NO_AUTOSTART"] = "1"
        // `start`/`stop` print the syntax of $SHELL: the same lines whichever shell runs the suite.
        env["SHELL"] = "/bin/sh"
        environment = env
    }

    package var configPath: String { root + "/config/rc-agent/config.toml" }
    package var socketPath: String { root + "/run/rc-agent/agent.sock" }

    /// Runs `rc-agent ARGS` with `stdin` (nil: /dev/null) and extra environment.
    package func rcAgent(_ arguments: [String], stdin: String? = nil, env extra: [String: String] = [:]) async throws -> CLIResult {
        try await runProcess(Binaries.rcAgent, arguments, stdin: stdin, environment: environment.merging(extra) { $1 })
    }

    /// Fails the test if any watched secret appears in `results` or in any file under the sandbox.
    package func assertNoLeaks(_ results: [CLIResult], sourceLocation: SourceLocation = #_sourceLocation) throws {
        let secrets = leaks.all
        for result in results {
            for secret in secrets {
                #expect(!result.stdout.contains(secret), "secret in stdout", sourceLocation: sourceLocation)
                #expect(!result.stderr.contains(secret), "secret in stderr", sourceLocation: sourceLocation)
            }
        }
        let files = FileManager.default.enumerator(atPath: root)
        while let relative = files?.nextObject() as? String {
            guard let data = FileManager.default.contents(atPath: root + "/" + relative) else { continue }
            let text = String(decoding: data, as: UTF8.self)
            for secret in secrets {
                #expect(!text.contains(secret), "secret in \(relative)", sourceLocation: sourceLocation)
            }
        }
    }

    package func remove() { try? FileManager.default.removeItem(atPath: root) }
}

/// True when the suite runs inside the private keyring session (scripts/with-keyring.sh).
package let hasPrivateKeyring = ProcessInfo.processInfo.environment["RC_SANDBOX"] != nil
