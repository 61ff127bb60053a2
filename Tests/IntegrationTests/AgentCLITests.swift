import Foundation
import RCAgentCore
import RCAgentTestSupport
import RiskCloudStandIn
import Testing

#if canImport(Glibc)
import Glibc
#endif

/// The agent as a user runs it: the built `rc-agent` (`start`, `stop`, `daemon`, `token`, `exec`),
/// curl over its Unix socket, the real (private) keyring and the in-process stand-in tenant.
///
/// Serialized: several tests start agents, 200 curl transfers or a 4 s token; one at a time keeps
/// them from starving each other on a small machine (no assertion depends on timing either way).
@Suite(.serialized, .enabled(if: hasPrivateKeyring, "needs scripts/with-keyring.sh (make test)"))
struct AgentCLITests {
    @Test func startPrintsTheShellLineIsIdempotentAndStopRemovesTheSocket() async throws {
        try await AgentWorld.run { world in
            let first = try await world.rcAgent(["start"])
            #expect(first.status == 0, "\(first)")
            #expect(first.stdout == "RC_AGENT_SOCK=\(world.socket); export RC_AGENT_SOCK;\n")
            let daemons = RunningAgents.pids(mentioning: world.sandbox.root)
            #expect(daemons.count == 1, "one daemon: \(daemons)")

            let second = try await world.rcAgent(["start"])
            #expect(second.status == 0, "\(second)")
            #expect(second.stdout == first.stdout)
            #expect(RunningAgents.pids(mentioning: world.sandbox.root) == daemons, "no second daemon")
            let status = try await world.curl("/v1/status")
            #expect(status.json?["pid"] as? Int == daemons.first.map { Int($0) }, "\(status.body)")

            let stop = try await world.rcAgent(["stop"])
            #expect(stop.status == 0, "\(stop)")
            #expect(stop.stdout == "unset RC_AGENT_SOCK;\n")
            #expect(AgentSocket.probe(world.socket) == .absent, "the socket is removed")
            #expect(await RunningAgents.waitUntilGone(daemons), "the daemon exited")
            let again = try await world.rcAgent(["stop"])
            #expect(again.status == 0, "stopping no agent is not an error: \(again)")
        }
    }

    @Test func tokenWithCurlAndWithTheCLI() async throws {
        try await AgentWorld.run { world in
            try await world.start()
            let before = await world.state.tokenRequestCount
            let reply = try await world.token()
            #expect(reply.status == 200, "\(reply.run)")
            let json = try #require(reply.json, "\(reply.body)")
            let shape: Set = ["access_token", "token_type", "expires_at", "expires_in", "profile", "url"]
            #expect(Set(json.keys).subtracting(["rotation"]) == shape, "\(json.keys.sorted())")
            let token = try #require(json["access_token"] as? String)
            #expect(!token.isEmpty)
            #expect(json["token_type"] as? String == "Bearer")
            #expect(json["profile"] as? String == world.profile)
            #expect(json["url"] as? String == world.url)
            let expiresIn = try #require(json["expires_in"] as? Int)
            #expect(expiresIn > 60)
            let expiresAt = try #require(json["expires_at"] as? String)
            #expect(expiresAt.hasSuffix("Z"), "RFC 3339 UTC: \(expiresAt)")
            let expiry = try #require(ISO8601DateFormatter().date(from: expiresAt), "\(expiresAt)")
            #expect(abs(expiry.timeIntervalSinceNow - Double(expiresIn)) < 120, "expires_at and expires_in agree")

            let text = try await world.token("&format=text")
            #expect(text.status == 200 && text.body == token + "\n", "bare token and a newline")
            let plain = try await world.curl("/v1/token?profile=\(world.profile)", headers: ["Accept: text/plain"])
            #expect(plain.status == 200 && plain.body == token + "\n", "Accept: text/plain")

            let cli = try await world.tokenCLI()
            #expect(cli.status == 0, "\(cli)")
            #expect(cli.stdout == token + "\n", "stdout holds the token and a newline only")
            #expect(cli.stderr.isEmpty, "\(cli.stderr)")
            // A bare `rc-agent token` is answered before the command-line parser loads
            // (`TokenShortcut`; the profile from RC_PROFILE): the same output.
            let bare = try await world.rcAgent(["token"], env: ["RC_PROFILE": world.profile], stdoutHoldsToken: true)
            #expect(bare.status == 0 && bare.stdout == token + "\n" && bare.stderr.isEmpty, "\(bare.status) \(bare.stderr)")
            let cliJSON = try await world.tokenCLI(["--json"])
            #expect(cliJSON.status == 0, "\(cliJSON)")
            let parsed = try #require(
                JSONSerialization.jsonObject(with: Data(cliJSON.stdout.utf8)) as? [String: Any])
            #expect(parsed["access_token"] as? String == token)
            #expect(parsed["profile"] as? String == world.profile)
            #expect(parsed["url"] as? String == world.url)
            #expect(await world.state.tokenRequestCount == before + 1, "one upstream call served all of them")
        }
    }

    @Test func socketDirectoryIs0700AndSocket0600OwnedByUs() async throws {
        try await AgentWorld.run { world in
            try await world.start()
            var info = stat()
            let directory = (world.socket as NSString).deletingLastPathComponent
            #expect(lstat(directory, &info) == 0)
            #expect(info.st_mode & S_IFMT == S_IFDIR)
            #expect(info.st_mode & 0o777 == 0o700, "directory mode \(String(info.st_mode & 0o777, radix: 8))")
            #expect(info.st_uid == getuid())
            #expect(lstat(world.socket, &info) == 0)
            #expect(info.st_mode & S_IFMT == S_IFSOCK)
            #expect(info.st_mode & 0o777 == 0o600, "socket mode \(String(info.st_mode & 0o777, radix: 8))")
            #expect(info.st_uid == getuid())
        }
    }

    @Test func execRunsTheCommandWithTokenAndURLAndPassesStdinAndExitStatus() async throws {
        try await AgentWorld.run { world in
            try await world.start()
            let exited = try await world.rcAgent(
                ["exec", "--profile", world.profile, "--", "sh", "-c", #"echo "$RC_URL"; test -n "$RC_TOKEN"; exit 7"#])
            #expect(exited.status == 7, "\(exited)")
            #expect(exited.stdout == world.url + "\n")

            let token = try #require(try await world.token().json?["access_token"] as? String)
            let piped = try await world.rcAgent(
                ["exec", "--profile", world.profile, "--", "sh", "-c", #"cat; echo "$RC_TOKEN""#],
                stdin: "line one\nline two\n", stdoutHoldsToken: true)
            #expect(piped.status == 0, "\(piped)")
            #expect(piped.stdout == "line one\nline two\n" + token + "\n", "stdin passed through; RC_TOKEN is the agent's")
        }
    }

    @Test func foregroundDaemonRefusesASecondAgentReloadsOnSIGHUPAndLeavesOnSIGTERM() async throws {
        try await AgentWorld.run { world in
            let daemon = try await world.daemon()

            let second = try world.spawn(Binaries.rcAgent, ["daemon", "--socket", world.socket], name: "second")
            let refused = await second.waitForExit(seconds: 30)
            #expect(refused == 3, "a live agent on the path: exit 3\n\(second.log)")
            #expect(second.log.contains("an agent is already running on \(world.socket)"), "\(second.log)")
            #expect(try await world.token().status == 200, "the first agent keeps serving")

            let extra = "extra-" + String(UUID().uuidString.prefix(6)).lowercased()
            #expect(try await world.statusProfiles().contains(extra) == false)
            let handle = try FileHandle(forWritingTo: URL(fileURLWithPath: world.sandbox.configPath))
            try handle.seekToEnd()
            try handle.write(contentsOf: Data("\n[profiles.\(extra)]\nurl = \"http://127.0.0.1:9\"\n".utf8))
            try handle.close()
            daemon.send(SIGHUP)
            var listed = false
            for _ in 0..<100 where !listed {
                listed = try await world.statusProfiles().contains(extra)
                if !listed { try await Task.sleep(nanoseconds: 100_000_000) }
            }
            #expect(listed, "after SIGHUP /v1/status lists the profile added to the config")

            daemon.send(SIGTERM)
            let status = await daemon.waitForExit(seconds: 10)
            #expect(status == 0, "SIGTERM: a graceful exit within a few seconds\n\(daemon.log)")
            #expect(AgentSocket.probe(world.socket) == .absent, "SIGTERM removes the socket")
        }
    }

    @Test func aKilledAgentsStaleSocketIsRemovedByTheNextStart() async throws {
        try await AgentWorld.run { world in
            let daemon = try await world.daemon()
            daemon.send(SIGKILL)
            #expect(await daemon.waitForExit(seconds: 10) == 128 + SIGKILL)
            #expect(AgentSocket.probe(world.socket) == .stale)
            let start = try await world.rcAgent(["start"])
            #expect(start.status == 0, "\(start)")
            #expect(AgentSocket.probe(world.socket) == .live)
            #expect(try await world.token().status == 200)
        }
    }

    /// The daemon-side guard against agents outliving their runtime directory (gpg-agent does the same).
    @Test func anAgentExitsWhenItsSocketFileIsRemovedOrReplaced() async throws {
        try await AgentWorld.run { world in
            try await world.start()
            let detached = RunningAgents.pids(mentioning: world.sandbox.root)
            #expect(detached.count == 1)
            try FileManager.default.removeItem(atPath: world.socket)
            #expect(await RunningAgents.waitUntilGone(detached, seconds: 30), "the agent outlived its socket file")

            let daemon = try await world.daemon()
            let moved = world.socket + ".moved"
            #expect(rename(world.socket, moved) == 0)
            try Data("not a socket".utf8).write(to: URL(fileURLWithPath: world.socket))
            #expect(await daemon.waitForExit(seconds: 30) == 0, "a replaced socket ends the agent\n\(daemon.log)")
            #expect(daemon.log.contains("the socket file was removed or replaced"))
            let kept = try String(contentsOfFile: world.socket, encoding: .utf8)
            #expect(kept == "not a socket", "the exiting agent leaves the replacement alone")
            try FileManager.default.removeItem(atPath: world.socket)
            try FileManager.default.removeItem(atPath: moved)
        }
    }

    @Test(.enabled(if: getuid() == 0, "runs curl as uid 65534 with setpriv, which needs root"))
    func anotherUserIsRefusedWith403() async throws {
        try await AgentWorld.run { world in
            // A directory of its own under /tmp: the sandbox's parents are private to us.
            let directory = "/tmp/rc-it-" + String(UUID().uuidString.prefix(8)).lowercased()
            defer { try? FileManager.default.removeItem(atPath: directory) }
            let socket = directory + "/agent.sock"
            let daemon = try await world.daemon(socket: socket)
            // For this test only, let uid 65534 reach the socket, so that the agent's own peer check is what refuses it.
            #expect(chmod(directory, 0o711) == 0 && chmod(socket, 0o666) == 0)
            let target = "/v1/token?profile=\(world.profile)"
            // A warm cache: the fast path would have a token to give; the peer check comes first.
            for _ in 0..<2 { #expect(try await world.curl(target, socket: socket).status == 200) }
            let refused = try await world.curl(target, socket: socket, asUID: 65534)
            #expect(refused.status == 403, "\(refused.run)")
            #expect(refused.errorCode == "forbidden", "\(refused.body)")
            #expect(try await world.curl(target, socket: socket).status == 200, "the agent's own user is served")
            #expect(daemon.log.contains("refused a connection from another user"), "\(daemon.log)")
            #expect(daemon.log.contains("65534"))
        }
    }

    @Test func oversizeHeadersAndAStalledRequestDoNotStopOtherClients() async throws {
        try await AgentWorld.run { world in
            try await world.start()
            let stalled = try StalledClient(socket: world.socket, partial: "GET /v1/token HTTP/1.1\r\nHost: local")
            defer { stalled.close() }
            let padding = "X-Padding: " + String(repeating: "a", count: 32 * 1024)
            let oversize = try await world.curl("/v1/token?profile=\(world.profile)", headers: [padding])
            // 431 with the error document (the agent reads what curl still sends before closing).
            #expect(oversize.status == 431, "\(oversize.run)")
            #expect(oversize.errorCode == "headers_too_large", "\(oversize.run)")
            let served = try await world.token()
            #expect(served.status == 200, "others are served meanwhile: \(served.run)")
        }
    }

    @Test func twoHundredConcurrentColdRequestsCauseOneUpstreamCall() async throws {
        try await AgentWorld.run { world in
            try await world.start()
            let before = await world.state.tokenRequestCount
            // The one upstream call is held for 2 s, so the requests arrive while it is in flight.
            await world.state.inject(.delay(seconds: 2), times: 1)
            let target = "http://localhost/v1/token?profile=\(world.profile)&format=text"
            let run = try await runProcess(
                "/usr/bin/curl",
                ["-sS", "--fail", "--max-time", "120", "--parallel", "--parallel-immediate", "--parallel-max", "200",
                 "--unix-socket", world.socket, "-w", "%{http_code}\n"] + Array(repeating: target, count: 200),
                environment: world.sandbox.environment)
            world.record(run, stdoutHoldsToken: true)
            #expect(run.status == 0, "\(run.stderr)")
            let lines = run.stdout.split(separator: "\n").map(String.init)
            #expect(lines.filter { $0 == "200" }.count == 200, "200 answers of 200 OK")
            #expect(lines.count == 400, "a token and a status line per request")
            let tokens = Set(lines.filter { Int($0) == nil })
            tokens.forEach(world.sandbox.leaks.watch)
            #expect(tokens.count == 1, "all got the same token")
            #expect(await world.state.tokenRequestCount == before + 1, "exactly one upstream token call")
        }
    }

    @Test func refreshAheadNeverHandsOutATokenWithLessThanMinValidLeft() async throws {
        try await AgentWorld.run { world in
            await world.state.setReuseLiveToken(false)
            await world.state.setTokenLifetime(seconds: 4)
            try await world.start()
            var remaining: [Int] = []
            var tokens: Set<String> = []
            let end = Date().addingTimeInterval(10)
            for _ in 0..<200 {
                guard Date() < end else { break }
                let reply = try await world.token("&min_valid=2")
                #expect(reply.status == 200, "\(reply.run)")
                if let left = reply.json?["expires_in"] as? Int { remaining.append(left) }
                if let token = reply.json?["access_token"] as? String { tokens.insert(token) }
                try await Task.sleep(nanoseconds: 150_000_000)
            }
            #expect(remaining.count >= 5, "\(remaining)")
            #expect(remaining.allSatisfy { $0 >= 2 }, "expires_in of every answer: \(remaining)")
            #expect(tokens.count >= 2, "the 4 s token was refreshed")
        }
    }

    @Test func outageServesTheCachedTokenThenTheDiagnosisAndRecoversWithoutRestart() async throws {
        try await AgentWorld.run { world in
            await world.state.setReuseLiveToken(false)
            await world.state.setTokenLifetime(seconds: 5)
            try await world.start()
            let cached = try #require(try await world.token("&min_valid=1").json?["access_token"] as? String)
            await world.state.inject(.status(503, body: nil))
            let injectedAt = await world.state.tokenRequestCount

            // While the token is valid: every answer is the cached token, also after failed upstream calls.
            var failedUpstream = false
            var expired: SocketReply?
            for _ in 0..<200 {
                let reply = try await world.token()
                guard reply.status == 200 else {
                    expired = reply
                    break
                }
                #expect(reply.json?["access_token"] as? String == cached)
                if await world.state.tokenRequestCount > injectedAt { failedUpstream = true }
                try await Task.sleep(nanoseconds: 100_000_000)
            }
            #expect(failedUpstream, "the cached token was served while the tenant failed")
            let failure = try #require(expired, "the token never expired")
            #expect(failure.status == 502, "\(failure.run)")
            #expect(failure.errorCode == "tenant_unreachable", "\(failure.body)")
            let error = try #require(failure.json?["error"] as? [String: Any])
            #expect(error["upstream_status"] as? Int == 503)
            #expect((error["message"] as? String)?.isEmpty == false)
            let status = try await world.profileStatus()
            #expect((status?["last_error"] as? [String: Any])?["code"] as? String == "tenant_unreachable")

            // The tenant is back: the agent recovers by itself (after its current backoff), no restart.
            await world.state.clearFailures()
            var recovered: String?
            for _ in 0..<300 where recovered == nil {
                let reply = try await world.token("&min_valid=1")
                if reply.status == 200 {
                    recovered = reply.json?["access_token"] as? String
                } else {
                    #expect(reply.status == 502, "\(reply.run)")
                    try await Task.sleep(nanoseconds: 200_000_000)
                }
            }
            let fresh = try #require(recovered, "no recovery after the outage")
            #expect(fresh != cached)
            let cli = try await world.tokenCLI()
            #expect(cli.status == 0, "\(cli)")
        }
    }

    @Test func rejectedCredentialsAreReportedWithoutARetryStorm() async throws {
        try await AgentWorld.run { world in
            try await world.start()
            await world.state.resetSecret(clientID: world.session.clientID, newSecret: "reset-" + UUID().uuidString)
            let before = await world.state.tokenRequestCount
            for _ in 0..<6 {
                let reply = try await world.token()
                #expect(reply.status == 502, "\(reply.run)")
                #expect(reply.errorCode == "credentials_rejected", "\(reply.body)")
                #expect((reply.json?["error"] as? [String: Any])?["upstream_status"] as? Int == 401)
                try await Task.sleep(nanoseconds: 300_000_000)
            }
            let cli = try await world.tokenCLI()
            #expect(cli.status == 4, "\(cli)")
            #expect(cli.stdout.isEmpty)
            let bare = try await world.rcAgent(["token"], env: ["RC_PROFILE": world.profile])
            #expect(bare.status == 4 && bare.stdout.isEmpty && bare.stderr == cli.stderr, "\(bare) vs \(cli)")
            #expect(await world.state.tokenRequestCount == before + 1, "one upstream call, then the latch")
        }
    }

    /// A script that answers every failure with `DELETE /v1/token` and `GET` again: 50 rounds
    /// with a refused secret reach the tenant at most once. Storing credentials clears the latch:
    /// a new secret, and also the same secret stored again once the tenant accepts it again.
    @Test func deleteKeepsTheRejectedLatchUntilCredentialsAreStoredAgain() async throws {
        try await AgentWorld.run { world in
            try await world.start()
            #expect(try await world.token().status == 200)
            let newSecret = "reset-" + UUID().uuidString
            world.sandbox.leaks.watch(newSecret)
            await world.state.resetSecret(clientID: world.session.clientID, newSecret: newSecret)
            let before = await world.state.tokenRequestCount
            for round in 0..<50 {
                let forget = try await curlUnixSocket(
                    socket: world.socket, "/v1/token?profile=\(world.profile)", method: "DELETE",
                    environment: world.sandbox.environment)
                #expect(forget.status == 200, "round \(round): \(forget.run)")
                let reply = try await world.token()
                #expect(reply.status == 502 && reply.errorCode == "credentials_rejected", "round \(round): \(reply.run)")
            }
            #expect(await world.state.tokenRequestCount <= before + 1, "the refused secret went out again")
            #expect(await world.state.tokenRequestCount == before + 1, "the first GET after the reset asks the tenant")

            // A new secret: login's DELETE clears the latch.
            let login = try await world.session.login(world.url, secret: newSecret)
            world.record(login)
            #expect(try await world.token().status == 200)

            // Refused again, then accepted again with the same secret (restored on the tenant):
            // a login with that secret writes the item again, which clears the latch too. The
            // keyring keeps write times in whole seconds, hence the pause.
            await world.state.resetSecret(clientID: world.session.clientID, newSecret: "other-" + UUID().uuidString)
            for _ in 0..<2 {
                let forget = try await curlUnixSocket(
                    socket: world.socket, "/v1/token?profile=\(world.profile)", method: "DELETE",
                    environment: world.sandbox.environment)
                #expect(forget.status == 200, "\(forget.run)")
                #expect(try await world.token().errorCode == "credentials_rejected")
            }
            await world.state.resetSecret(clientID: world.session.clientID, newSecret: newSecret)
            try await Task.sleep(nanoseconds: 1_100_000_000)
            world.record(try await world.session.login(world.url, secret: newSecret))
            #expect(try await world.token().status == 200)
        }
    }

    /// The config's `url` for the profile no longer matches the URL stored with the credentials:
    /// the agent refuses before anything is sent, naming both URLs and the fix.
    @Test func storedCredentialsForAnotherURLAreNotUsed() async throws {
        try await AgentWorld.run { world in
            try await world.start()
            let other = StandInState()
            try await withStandIn(other) { otherURL in
                let config = try String(contentsOfFile: world.sandbox.configPath, encoding: .utf8)
                #expect(config.contains(world.url))
                try config.replacingOccurrences(of: world.url, with: otherURL)
                    .write(toFile: world.sandbox.configPath, atomically: true, encoding: .utf8)
                // The agent reads the config again on DELETE /v1/token (as after login) and SIGHUP.
                let forget = try await curlUnixSocket(
                    socket: world.socket, "/v1/token?profile=\(world.profile)", method: "DELETE",
                    environment: world.sandbox.environment)
                #expect(forget.status == 200, "\(forget.run)")
                let before = await world.state.tokenRequestCount
                let reply = try await world.token()
                #expect(reply.status == 409, "\(reply.run)")
                #expect(reply.errorCode == "url_mismatch", "\(reply.body)")
                let cli = try await world.tokenCLI()
                #expect(cli.status == 2, "\(cli)")
                #expect(cli.stderr.contains(world.url) && cli.stderr.contains(otherURL), "\(cli)")
                #expect(cli.stderr.contains("rc-agent login --profile \(world.profile) --url \(otherURL)"), "\(cli)")
                #expect(await world.state.tokenRequestCount == before)
                #expect(await other.tokenRequestCount == 0)
            }
        }
    }

    /// `--log-file` with a small cap: the log is rotated to FILE.1 and neither file grows far past
    /// the cap; `rc-agent start` runs the agent with `--log-file` on its state directory's log.
    @Test func theLogFileIsRotatedAtItsCap() async throws {
        try await AgentWorld.run { world in
            let log = world.sandbox.root + "/state/capped.log"
            let daemon = try world.spawn(
                Binaries.rcAgent, ["daemon", "--socket", world.socket, "--log-file", log, "--log-max-bytes", "4096"],
                name: "capped")
            var alive = false
            for _ in 0..<300 where !alive && daemon.exitStatus == nil {
                alive = AgentSocket.probe(world.socket) == .live
                if !alive { try await Task.sleep(nanoseconds: 50_000_000) }
            }
            #expect(alive, "\(daemon.log)")
            // Each answered request writes an audit line of about 200 bytes.
            for _ in 0..<60 { #expect(try await world.token().status == 200) }
            let size = { (path: String) in ((try? FileManager.default.attributesOfItem(atPath: path))?[.size] as? Int) ?? -1 }
            #expect(size(log + ".1") > 4096, "rotated: \(size(log + ".1"))")
            #expect(size(log + ".1") < 4096 + 2048)
            #expect((0..<4096 + 2048).contains(size(log)), "\(size(log))")
            let current = try String(contentsOfFile: log, encoding: .utf8)
            #expect(current.contains("token served"), "\(current)")
            daemon.send(SIGTERM)
            #expect(await daemon.waitForExit(seconds: 10) != nil)

            try await world.start()
            let started = RunningAgents.pids(mentioning: world.sandbox.root)
            let argv = started.compactMap { FileManager.default.contents(atPath: "/proc/\($0)/cmdline") }
                .map { String(decoding: $0, as: UTF8.self).split(separator: "\0").map(String.init) }
            #expect(argv.contains { $0.contains("--log-file") && $0.contains { $0.hasSuffix("/rc-agent/agent.log") } }, "\(argv)")
        }
    }

    @Test func socketActivationThroughSystemdSocketActivate() async throws {
        try await AgentWorld.run { world in
            let directory = (world.socket as NSString).deletingLastPathComponent
            try FileManager.default.createDirectory(
                atPath: directory, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
            // systemd-socket-activate clears the environment: pass on what the agent needs.
            let names = ["HOME", "XDG_CONFIG_HOME", "XDG_RUNTIME_DIR", "XDG_STATE_HOME", "DBUS_SESSION_BUS_ADDRESS",
                         "RC_AGENT_CONFIG"].filter { world.sandbox.environment[$0] != nil }
            let activator = try world.spawn(
                "/usr/bin/systemd-socket-activate",
                ["-l", world.socket] + names.flatMap { ["-E", $0] } + [Binaries.rcAgent, "daemon"], name: "activated")
            var listening = false
            for _ in 0..<300 where !listening && activator.exitStatus == nil {
                var info = stat()
                listening = lstat(world.socket, &info) == 0 && info.st_mode & S_IFMT == S_IFSOCK
                if !listening { try await Task.sleep(nanoseconds: 100_000_000) }
            }
            #expect(listening, "systemd-socket-activate listens\n\(activator.log)")

            let reply = try await world.token()
            #expect(reply.status == 200, "\(reply.run)\n\(activator.log)")
            #expect((reply.json?["access_token"] as? String)?.isEmpty == false)
            let status = try await world.curl("/v1/status")
            #expect(status.json?["pid"] as? Int == Int(activator.pid), "the agent took over the activator's process")
        }
    }

    @Test func withoutAutostartItIsExit3AndWithItTheTokenIsServed() async throws {
        try await AgentWorld.run { world in
            let byEnvironment = try await world.tokenCLI()  // the sandbox sets RC_AGENT_NO_AUTOSTART=1
            #expect(byEnvironment.status == 3, "\(byEnvironment)")
            #expect(byEnvironment.stderr.contains("rc-agent start"), "\(byEnvironment.stderr)")
            let byFlag = try await world.tokenCLI(["--no-autostart"], env: ["RC_AGENT_NO_AUTOSTART": "0"])
            #expect(byFlag.status == 3, "\(byFlag)")
            #expect(AgentSocket.probe(world.socket) == .absent)
            #expect(RunningAgents.pids(mentioning: world.sandbox.root).isEmpty, "no agent was started")

            let autostarted = try await world.tokenCLI([], env: ["RC_AGENT_NO_AUTOSTART": "0"])
            #expect(autostarted.status == 0, "\(autostarted)")
            #expect(!autostarted.stdout.isEmpty)
            #expect(AgentSocket.probe(world.socket) == .live)
            #expect(RunningAgents.pids(mentioning: world.sandbox.root).count == 1)
            // AgentWorld.run stops it and checks that no agent of this sandbox is left.
        }
    }
}

