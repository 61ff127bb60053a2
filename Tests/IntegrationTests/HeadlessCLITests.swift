import Foundation
import RiskCloudStandIn
import RCAgentTestSupport
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// Headless and unattended use as a user meets it: no D-Bus session bus, the kernel keyring
/// (each command in a session keyring of its own), credentials in the environment or in a
/// delivered file, a cron job's bare environment. The built binary, the stand-in tenant.
@Suite(.enabled(if: hasPrivateKeyring, "needs scripts/with-keyring.sh (make test)"))
struct HeadlessCLITests {
    @Test func keyctlLoginTokenRotateLogoutWithNoBusAtAll() async throws {
        let (session, state) = try await Self.prepared()
        let (sandbox, profile) = (session.sandbox, session.profile)
        let newSecret = "rotated-" + UUID().uuidString
        sandbox.leaks.watch(newSecret)
        try await withStandIn(state) { url in
            let login = try await sandbox.rcAgentWithoutBus(
                ["login", "--profile", profile, "--url", url, "--client-id", session.clientID, "--client-secret-stdin",
                 "--backend", "keyctl"],
                stdin: session.secret + "\n")
            #expect(login.status == 0, "\(login)")
            #expect(login.stderr.contains("survives logout, not a reboot (like ssh-agent: log in again after a reboot)"))

            // What the kernel holds: a user key named for the profile, owner-only, secret in the payload only.
            let id = try #require(try await KernelKeyring.keyID(profile: profile), "no rc-agent:\(profile) key")
            let description = try await KernelKeyring.describe(id)
            #expect(description.contains("user: rc-agent:\(profile)"), "\(description)")
            #expect(!description.contains(session.secret))
            let permissions = try #require(try await KernelKeyring.permissions(id))
            #expect(permissions & 0x0000_ffff == 0, "group/other permissions: \(String(permissions, radix: 16))")
            #expect(permissions & 0x3f00_0000 == 0x3f00_0000)
            #expect(try await KernelKeyring.payload(id).hasSuffix("secret=" + session.secret))
            #expect(try await KernelKeyring.showUser().contains("_persistent"))
            let config = try String(contentsOfFile: sandbox.configPath, encoding: .utf8)
            #expect(config.contains("backend = \"keyctl\""))

            let status = try await sandbox.rcAgentWithoutBus(["status", "--json", "--profile", profile])
            #expect(status.status == 0, "\(status)")
            let profiles = try #require(
                (try JSONSerialization.jsonObject(with: Data(status.stdout.utf8)) as? [String: Any])?["profiles"]
                    as? [[String: Any]])
            #expect(profiles.first?["backend"] as? String == "keyctl")
            #expect(profiles.first?["secret_stored"] as? Bool == true)
            #expect(profiles.first?["secret_age_days"] as? Int == 0)
            let statusText = try await sandbox.rcAgentWithoutBus(["status", "--profile", profile])
            #expect(statusText.stdout.contains("survives logout, not a reboot"), "\(statusText)")

            // The agent starts and serves with no bus; the keyctl profile is not "unavailable".
            let start = try await sandbox.rcAgentWithoutBus(["start"])
            #expect(start.status == 0, "\(start)")
            let token = try await sandbox.rcAgentWithoutBus(["token", "--profile", profile])
            #expect(token.status == 0, "\(token)")
            let minted = await state.mintedTokens
            #expect(token.stdout.trimmingCharacters(in: .newlines) == minted.last, "not the token the tenant issued")
            let agentStatus = try await curl(sandbox.socketPath, "/v1/status")
            let entry = try #require((agentStatus.json?["profiles"] as? [[String: Any]])?.first { $0["profile"] as? String == profile })
            #expect(entry["keyring"] as? String == "ok")
            #expect(entry["backend"] as? String == "keyctl")

            await state.resetSecret(clientID: session.clientID, newSecret: newSecret)
            let rotate = try await sandbox.rcAgentWithoutBus(
                ["rotate", "--profile", profile, "--client-secret-stdin"], stdin: newSecret + "\n")
            #expect(rotate.status == 0, "\(rotate)")
            #expect(try await KernelKeyring.payload(id).hasSuffix("secret=" + newSecret))
            let after = try await sandbox.rcAgentWithoutBus(["token", "--profile", profile])
            #expect(after.status == 0, "\(after)")
            #expect(after.stdout != token.stdout)

            let logout = try await sandbox.rcAgentWithoutBus(["logout", "--profile", profile])
            #expect(logout.status == 0, "\(logout)")
            #expect(try await KernelKeyring.keyID(profile: profile) == nil)
            let gone = try await sandbox.rcAgentWithoutBus(["token", "--profile", profile])
            #expect(gone.status == 2, "\(gone)")
            _ = try await sandbox.rcAgentWithoutBus(["stop"])
            try sandbox.assertNoLeaks([login, status, statusText, start, token, rotate, after, logout, gone])
        }
        sandbox.remove()
    }

    @Test func ciJobWithOnlyTheThreeVariables() async throws {
        let (session, state) = try await Self.prepared()
        let sandbox = session.sandbox
        let home = NSHomeDirectory()
        let before = Self.rcAgentFiles(home: home)
        let fallbackSocket = "/tmp/rc-agent-\(getuid())/agent.sock"
        let fallbackBefore = FileManager.default.fileExists(atPath: fallbackSocket)
        try await withStandIn(state) { url in
            let ci = ["RC_CLIENT_ID": session.clientID, "RC_CLIENT_SECRET": session.secret, "RC_AGENT_URL": url]
            let token = try await sandbox.rcAgentExactly(["token"], environment: ci)
            #expect(token.status == 0, "\(token)")
            #expect(!token.stdout.isEmpty)
            #expect(await state.tokenRequestCount == 1)

            let api = try await sandbox.rcAgentExactly(["api", "/api/v2/records?size=1"], environment: ci)
            #expect(api.status == 0, "\(api)")
            #expect(api.stdout.contains("content"))

            let exec = try await sandbox.rcAgentExactly(["exec", "--", "/usr/bin/env"], environment: ci)
            #expect(exec.status == 0, "\(exec)")
            let childEnvironment = Set(exec.stdout.split(separator: "\n").map { String($0.prefix { $0 != "=" }) })
            #expect(childEnvironment.contains("RC_TOKEN"))
            #expect(childEnvironment.contains("RC_URL"))
            #expect(!childEnvironment.contains("RC_CLIENT_SECRET"))
            #expect(!exec.stdout.contains(session.secret))

            // The same with the secret in a file the CI wrote: the child gets neither.
            let secretFile = try Self.secretDirectory() + "/ci-secret"
            FileManager.default.createFile(
                atPath: secretFile, contents: Data((session.secret + "\n").utf8), attributes: [.posixPermissions: 0o600])
            let fromFile = ["RC_CLIENT_ID": session.clientID, "RC_CLIENT_SECRET_FILE": secretFile, "RC_AGENT_URL": url]
            let execFile = try await sandbox.rcAgentExactly(["exec", "--", "/usr/bin/env"], environment: fromFile)
            #expect(execFile.status == 0, "\(execFile)")
            #expect(execFile.stdout.contains("RC_TOKEN="))
            #expect(!execFile.stdout.contains("RC_CLIENT_SECRET"))

            // A HOME of its own: nothing at all may appear in it.
            let emptyHome = sandbox.root + "/ci-home"
            try FileManager.default.createDirectory(atPath: emptyHome, withIntermediateDirectories: true)
            var withHome = ci
            withHome["HOME"] = emptyHome
            let status = try await sandbox.rcAgentExactly(["status"], environment: withHome)
            #expect(status.status == 0, "\(status)")
            #expect(status.stdout.contains("backend:    env: the environment"), "\(status)")
            #expect(!status.stdout.contains("agent: running"))
            let doctor = try await sandbox.rcAgentExactly(["doctor", "--json"], environment: withHome)
            #expect(doctor.status == 0, "\(doctor)")
            #expect(doctor.stdout.contains("\"id\" : \"credentials\"") || doctor.stdout.contains("\"id\":\"credentials\""))
            #expect(doctor.stdout.contains("backend env: credentials for"), "\(doctor)")
            let tokenHome = try await sandbox.rcAgentExactly(["token"], environment: withHome)
            #expect(tokenHome.status == 0, "\(tokenHome)")
            #expect(try FileManager.default.contentsOfDirectory(atPath: emptyHome).isEmpty)
            #expect(Self.rcAgentFiles(home: home) == before, "rc-agent wrote under \(home)")
            #expect(FileManager.default.fileExists(atPath: fallbackSocket) == fallbackBefore, "an agent was started")
            try sandbox.assertNoLeaks([token, api, exec, execFile, status, doctor, tokenHome])
        }
        sandbox.remove()
    }

    /// `env` exported to a long-running agent: it serves the selected profile from the variables,
    /// and the secret is in neither its debug log nor its argv.
    @Test func environmentExportedToTheAgentStaysOutOfItsLogAndArgv() async throws {
        let (session, state) = try await Self.prepared()
        let sandbox = session.sandbox
        try await withStandIn(state) { url in
            let exported = [
                "RC_CLIENT_ID": session.clientID, "RC_CLIENT_SECRET": session.secret, "RC_AGENT_URL": url,
                "RC_AGENT_LOG": "debug", "RC_PROFILE": session.profile,
            ]
            let start = try await sandbox.rcAgentWithoutBus(["start"], env: exported)
            #expect(start.status == 0, "\(start)")
            let reply = try await curl(sandbox.socketPath, "/v1/token?profile=\(session.profile)")
            #expect(reply.status == 200, "\(reply.body)")
            let status = try await curl(sandbox.socketPath, "/v1/status")
            let entry = (status.json?["profiles"] as? [[String: Any]])?.first { $0["profile"] as? String == session.profile }
            #expect(entry?["backend"] as? String == "env")
            let pid = try #require(status.json?["pid"] as? Int)
            let argv = try Data(contentsOf: URL(fileURLWithPath: "/proc/\(pid)/cmdline"))
            #expect(!String(decoding: argv, as: UTF8.self).contains(session.secret))
            _ = try await sandbox.rcAgentWithoutBus(["stop"])
            let log = try String(contentsOfFile: sandbox.root + "/state/rc-agent/agent.log", encoding: .utf8)
            #expect(log.contains("Starting service"), "the log is not at debug level")
            try sandbox.assertNoLeaks([start])
        }
        sandbox.remove()
    }

    @Test func fileBackendRotatedInPlaceGivesTheNextTokenFromTheNewSecret() async throws {
        let (session, state) = try await Self.prepared()
        let (sandbox, profile) = (session.sandbox, session.profile)
        let newSecret = "delivered-" + UUID().uuidString
        sandbox.leaks.watch(newSecret)
        let secretFile = try Self.secretDirectory() + "/secret"
        try Self.write(session.secret + "\n", to: secretFile, mode: 0o600)
        try await withStandIn(state) { url in
            let start = try await Self.startAgent(session, url: url, secretFile: secretFile)
            let first = try await sandbox.rcAgentWithoutBus(["token", "--profile", profile])
            #expect(first.status == 0, "\(first)")

            // The delivering system rotates: the tenant takes the new secret, the file is rewritten in place.
            await state.resetSecret(clientID: session.clientID, newSecret: newSecret)
            try Self.write(newSecret + "\n", to: secretFile, mode: 0o600)
            let forget = try await curl(sandbox.socketPath, "/v1/token?profile=\(profile)", method: "DELETE")
            #expect(forget.status == 200 || forget.status == 204, "\(forget.body)")
            let second = try await sandbox.rcAgentWithoutBus(["token", "--profile", profile])
            #expect(second.status == 0, "the agent did not use the new secret: \(second)")
            #expect(second.stdout != first.stdout)

            // Rotated again with no one telling the agent: it notices the content and fetches at once.
            let third = "again-" + UUID().uuidString
            sandbox.leaks.watch(third)
            let requests = await state.tokenRequestCount
            await state.resetSecret(clientID: session.clientID, newSecret: third)
            try Self.write(third + "\n", to: secretFile, mode: 0o600)
            for _ in 0..<300 where await state.tokenRequestCount == requests {
                try await Task.sleep(nanoseconds: 100_000_000)
            }
            #expect(await state.tokenRequestCount > requests, "the agent did not notice the rotated file")
            let fourth = try await sandbox.rcAgentWithoutBus(["token", "--profile", profile])
            #expect(fourth.status == 0, "\(fourth)")

            // Rotate and logout say where the secret has to change instead.
            let rotate = try await sandbox.rcAgentWithoutBus(["rotate", "--profile", profile, "--client-secret-stdin"], stdin: "x\n")
            #expect(rotate.status == 64, "\(rotate)")
            #expect(rotate.stderr.contains(secretFile))
            let logout = try await sandbox.rcAgentWithoutBus(["logout", "--profile", profile])
            #expect(logout.status == 64, "\(logout)")
            #expect(logout.stderr.contains(secretFile))

            // A file others can read is a warning, in status and doctor.
            chmod(secretFile, 0o644)
            let status = try await sandbox.rcAgentWithoutBus(["status", "--profile", profile])
            #expect(status.stdout.contains("group or others can read it"), "\(status)")
            let doctor = try await sandbox.rcAgentWithoutBus(["doctor", "--profile", profile])
            #expect(doctor.stdout.contains("group or others can read it"), "\(doctor)")
            #expect(doctor.stdout.contains("backend file: secret for '\(profile)' read from \(secretFile)"), "\(doctor)")
            _ = try await sandbox.rcAgentWithoutBus(["stop"])
            try sandbox.assertNoLeaks([start, first, second, fourth, rotate, logout, status, doctor])
        }
        sandbox.remove()
    }

    /// Moving a profile to another store leaves no copy of its secret in the old one, and logout
    /// empties every store, not only the one the config routes the profile to now.
    @Test func backendChangeAndLogoutLeaveNoSecretBehind() async throws {
        let (session, state) = try await Self.prepared()
        let (sandbox, profile) = (session.sandbox, session.profile)
        try await withStandIn(state) { url in
            func login(_ extra: [String]) async throws -> CLIResult {
                try await sandbox.rcAgent(
                    ["login", "--profile", profile, "--url", url, "--client-id", session.clientID, "--client-secret-stdin"]
                        + extra, stdin: session.secret + "\n")
            }
            let desktop = try await login([])
            #expect(desktop.status == 0, "\(desktop)")
            #expect(try await TestKeyring.secret(profile: profile, environment: sandbox.environment) != nil)

            let moved = try await login(["--backend", "keyctl"])
            #expect(moved.status == 0, "\(moved)")
            #expect(moved.stderr.contains("Removed the profile's earlier credentials from secret-service"), "\(moved)")
            #expect(try await TestKeyring.secret(profile: profile, environment: sandbox.environment) == nil,
                "the secret stayed in the desktop keyring")
            #expect(try await KernelKeyring.keyID(profile: profile) != nil)

            // A hand-edited config sends the profile back to the desktop keyring: now both stores hold it.
            let config = try String(contentsOfFile: sandbox.configPath, encoding: .utf8)
            try config.replacingOccurrences(of: "backend = \"keyctl\"", with: "")
                .write(toFile: sandbox.configPath, atomically: true, encoding: .utf8)
            let again = try await login([])
            #expect(again.status == 0, "\(again)")
            #expect(try await KernelKeyring.keyID(profile: profile) != nil)

            let logout = try await sandbox.rcAgent(["logout", "--profile", profile])
            #expect(logout.status == 0, "\(logout)")
            #expect(try await TestKeyring.secret(profile: profile, environment: sandbox.environment) == nil)
            #expect(try await KernelKeyring.keyID(profile: profile) == nil, "logout left the kernel key")
            try sandbox.assertNoLeaks([desktop, moved, again, logout])
        }
        sandbox.remove()
    }

    /// The agent asked for a profile before its file was delivered: when the file appears, the
    /// agent fetches with it on its own, without a DELETE or a restart.
    @Test func fileDeliveredAfterTheAgentAskedIsNoticed() async throws {
        let (session, state) = try await Self.prepared()
        let (sandbox, profile) = (session.sandbox, session.profile)
        let secretFile = try Self.secretDirectory() + "/late"
        try await withStandIn(state) { url in
            let start = try await Self.startAgent(session, url: url, secretFile: secretFile)
            let early = try await sandbox.rcAgentWithoutBus(["token", "--profile", profile])
            #expect(early.status != 0, "\(early)")
            #expect(early.stderr.contains(secretFile), "\(early)")
            #expect(await state.tokenRequestCount == 0)

            try Self.write(session.secret + "\n", to: secretFile, mode: 0o600)
            for _ in 0..<300 where await state.tokenRequestCount == 0 {
                try await Task.sleep(nanoseconds: 100_000_000)
            }
            #expect(await state.tokenRequestCount > 0, "the agent did not notice the delivered file")
            let token = try await sandbox.rcAgentWithoutBus(["token", "--profile", profile])
            #expect(token.status == 0, "\(token)")
            #expect(token.stdout.trimmingCharacters(in: .newlines) == (await state.mintedTokens).last)
            _ = try await sandbox.rcAgentWithoutBus(["stop"])
            try sandbox.assertNoLeaks([start, early, token])
        }
        sandbox.remove()
    }

    /// A secret file that is a FIFO with no writer (or any other non-regular file) is an error at
    /// once: the agent neither blocks in open(2) nor stops serving.
    @Test func secretFileThatIsAFIFOIsAnErrorNotAHang() async throws {
        let (session, state) = try await Self.prepared()
        let (sandbox, profile) = (session.sandbox, session.profile)
        let fifo = try Self.secretDirectory() + "/fifo"
        #expect(mkfifo(fifo, 0o600) == 0)
        try await withStandIn(state) { url in
            let start = try await Self.startAgent(session, url: url, secretFile: fifo)
            let token = try await sandbox.rcAgentWithoutBus(["token", "--profile", profile])
            #expect(token.status != 0, "\(token)")
            #expect(token.stderr.contains("is not a regular file"), "\(token)")
            let status = try await curl(sandbox.socketPath, "/v1/status")
            #expect(status.status == 200, "the agent stopped serving: \(status.body)")
            _ = try await sandbox.rcAgentWithoutBus(["stop"])
        }
        sandbox.remove()
    }

    @Test func noBusAndNoBackendFailsNamingTheChoices() async throws {
        let session = try LoggedInSession()
        let sandbox = session.sandbox
        let login = try await sandbox.rcAgentWithoutBus(
            ["login", "--profile", session.profile, "--url", "http://127.0.0.1:9", "--client-id", session.clientID,
             "--client-secret-stdin"],
            stdin: session.secret + "\n")
        let status = try await sandbox.rcAgentWithoutBus(["status", "--profile", session.profile])
        let doctor = try await sandbox.rcAgentWithoutBus(["doctor", "--profile", session.profile], env: ["RC_AGENT_URL": "http://127.0.0.1:9"])
        for result in [login, status] {
            #expect(result.status == 5, "\(result)")
            let text = result.stdout + result.stderr
            #expect(text.contains("rc-agent login --backend keyctl"), "\(result)")
            #expect(text.contains("RC_CLIENT_ID") && text.contains("RC_CLIENT_SECRET") && text.contains("RC_AGENT_URL"))
            #expect(text.contains("client_secret_file"))
        }
        #expect(doctor.stdout.contains("rc-agent login --backend keyctl"), "\(doctor)")
        #expect(!FileManager.default.fileExists(atPath: sandbox.configPath), "a failed login wrote the config")
        try sandbox.assertNoLeaks([login, status, doctor])
        sandbox.remove()
    }

    /// A cron job: `env -i HOME=… PATH=…`, no XDG_RUNTIME_DIR, finds the agent systemd put in
    /// /run/user/UID rather than starting a second one in /tmp.
    @Test(.enabled(if: getuid() == 0 && !FileManager.default.fileExists(atPath: "/run/user/0"), "needs root and no /run/user/0"))
    func cronJobFindsTheAgentInRunUser() async throws {
        let (session, state) = try await Self.prepared()
        let sandbox = session.sandbox
        let runtime = "/run/user/0"
        #expect(mkdir(runtime, 0o700) == 0)
        chmod(runtime, 0o700)
        defer { try? FileManager.default.removeItem(atPath: runtime) }
        let home = sandbox.root + "/home"
        let secretFile = try Self.secretDirectory() + "/secret"
        try Self.write(session.secret, to: secretFile, mode: 0o600)
        try await withStandIn(state) { url in
            try Self.writeConfig(home + "/.config/rc-agent/config.toml", """
                [defaults]
                profile = "\(session.profile)"

                [profiles.\(session.profile)]
                url = "\(url)"
                client_id = "\(session.clientID)"
                client_secret_file = "\(secretFile)"
                """)
            let socket = runtime + "/rc-agent/agent.sock"
            let start = try await sandbox.rcAgentWithoutBus(["start", "--socket", socket, "--config", home + "/.config/rc-agent/config.toml"])
            #expect(start.status == 0, "\(start)")
            let cron = ["HOME": home, "PATH": "/usr/bin:/bin"]
            let token = try await sandbox.rcAgentExactly(["token", "--no-autostart"], environment: cron)
            #expect(token.status == 0, "\(token)")
            let stop = try await sandbox.rcAgentExactly(["stop"], environment: cron)
            #expect(stop.status == 0, "\(stop)")
            #expect(!stop.stderr.contains("no agent is running"), "\(stop)")
            try sandbox.assertNoLeaks([start, token, stop])
        }
        sandbox.remove()
    }

    // MARK: Helpers

    /// A fresh session and a stand-in that knows its Client ID and Secret.
    static func prepared() async throws -> (LoggedInSession, StandInState) {
        let session = try LoggedInSession()
        let state = StandInState()
        await state.addClient(id: session.clientID, secret: session.secret)
        return (session, state)
    }

    /// A private directory for the secret files a test names, outside the sandbox (whose every file
    /// is scanned for secrets): the one place a secret may be written is the file the user named.
    static func secretDirectory() throws -> String {
        let base = ProcessInfo.processInfo.environment["RC_SANDBOX"] ?? NSTemporaryDirectory()
        let path = base + "/named-" + String(UUID().uuidString.prefix(8)).lowercased()
        try FileManager.default.createDirectory(
            atPath: path, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        return path
    }

    static func write(_ text: String, to path: String, mode: mode_t) throws {
        let fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, mode)
        guard fd >= 0 else { throw POSIXError(.EIO) }
        defer { close(fd) }
        fchmod(fd, mode)
        _ = text.withCString { Glibc.write(fd, $0, strlen($0)) }
    }

    /// Writes a `file` profile reading `secretFile` for the session and starts the agent (no bus).
    static func startAgent(_ session: LoggedInSession, url: String, secretFile: String) async throws -> CLIResult {
        try writeConfig(session.sandbox.configPath, """
            [profiles.\(session.profile)]
            url = "\(url)"
            backend = "file"
            client_id = "\(session.clientID)"
            client_secret_file = "\(secretFile)"
            """)
        let start = try await session.sandbox.rcAgentWithoutBus(["start"])
        #expect(start.status == 0, "\(start)")
        return start
    }

    static func writeConfig(_ path: String, _ text: String) throws {
        try FileManager.default.createDirectory(
            atPath: (path as NSString).deletingLastPathComponent, withIntermediateDirectories: true,
            attributes: [.posixPermissions: 0o700])
        try write(text + "\n", to: path, mode: 0o600)
    }

    /// rc-agent's own paths under `home` that exist now.
    static func rcAgentFiles(home: String) -> [String] {
        [".config/rc-agent", ".local/state/rc-agent", ".cache/rc-agent"].filter {
            FileManager.default.fileExists(atPath: home + "/" + $0)
        }
    }
}

