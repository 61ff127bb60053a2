import Foundation
import RCAgentTestSupport
import Testing

/// The short form of the reliability suite (`make soak`): scripts/soak.sh with SHORT=1 against
/// the built binaries — bad input with a good client, 200 concurrent clients with refreshes,
/// tenant faults, the keyring daemon killed and restarted, SIGKILL and the stale socket, a
/// read-only/full config dir during login, and the secrets scan (docs/RELIABILITY.md).
///
/// It runs in a private D-Bus + gnome-keyring of its own (with-keyring.sh started afresh), because
/// it kills that keyring daemon: the keyring the other suites share must not go away under them.
@Suite(.enabled(if: hasPrivateKeyring, "needs scripts/with-keyring.sh (make test)"))
struct ReliabilityTests {
    static let parts = ["bad-input", "load", "faults", "keyring", "sigkill", "config-dir", "secrets"]

    @Test("scripts/soak.sh SHORT=1: every part passes")
    func shortSoak() async throws {
        let root = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent()
            .deletingLastPathComponent().path
        var environment = ProcessInfo.processInfo.environment
        for key in ["RC_SANDBOX", "RC_SANDBOX_INNER", "DBUS_SESSION_BUS_ADDRESS", "GNOME_KEYRING_CONTROL", "RC_AGENT_SOCK"] {
            environment[key] = nil
        }
        environment["SHORT"] = "1"
        environment["RC_BIN_DIR"] = Binaries.directory.path
        let sandbox = try Sandbox()
        defer { sandbox.remove() }
        // posix_spawn with an empty signal mask: the script's SIGTERMs (keyring daemon, stand-in,
        // agent) must arrive.
        let soak = try BackgroundProcess(
            "/bin/bash", [root + "/scripts/with-keyring.sh", root + "/scripts/soak.sh"], environment: environment,
            logPath: sandbox.root + "/soak.log")
        defer { soak.kill() }
        let status = await soak.waitForExit(seconds: 300)
        let output = soak.log
        let lines = output.split(separator: "\n").map(String.init)
        let summary = lines.last { $0.range(of: #"^\d+ passed, \d+ failed$"#, options: .regularExpression) != nil }
        #expect(status == 0, "soak exit status \(String(describing: status)):\n\(output)")
        #expect(summary == "\(Self.parts.count) passed, 0 failed", "\(output)")
        for part in Self.parts {
            #expect(lines.contains { $0.hasPrefix("PASS \(part):") }, "part \(part):\n\(output)")
        }
    }
}
