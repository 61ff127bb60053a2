import Foundation
import Glibc
import RCAgentClient
import RCAgentCore
import RiskCloudStandIn
import Testing

/// One test's world: a profile logged in against a stand-in, everything the test ran (for the
/// leak scan), and the daemons it spawned, which are ended whatever happens.
package final class AgentWorld: @unchecked Sendable {
    package let session: LoggedInSession
    package let state: StandInState
    package let url: String
    private let lock = NSLock()
    private var results: [CLIResult] = []
    private var spawned: [BackgroundProcess] = []

    package var sandbox: Sandbox { session.sandbox }
    package var profile: String { session.profile }
    package var socket: String { sandbox.socketPath }

    private init(session: LoggedInSession, state: StandInState, url: String) {
        self.session = session
        self.state = state
        self.url = url
    }

    /// Runs `body` in a fresh world, then stops every agent it started (also when it fails),
    /// checks that none is left, scans outputs and the sandbox (agent logs included) for the
    /// secret and every token the stand-in issued, logs out and removes the sandbox.
    ///
    /// - Parameter tls: the stand-in's TLS mode and the CA bundle the profile's own `ca_file`
    ///   names (written before the login).
    package static func run(
        tls: (standIn: StandInTLS, caFile: String)? = nil, _ body: (AgentWorld) async throws -> Void
    ) async throws {
        let session = try LoggedInSession()
        if let tls { try session.setCAFile(tls.caFile) }
        // Whatever happens below, no agent of this sandbox outlives the test.
        defer { RunningAgents.kill(mentioning: session.sandbox.root) }
        session.sandbox.leaks.watch(Data("\(session.clientID):\(session.secret)".utf8).base64EncodedString())
        let state = StandInState()
        await state.addClient(id: session.clientID, secret: session.secret)
        do {
            try await withStandIn(state, tls: tls?.standIn) { url in
                try await session.login(url)
                let world = AgentWorld(session: session, state: state, url: url)
                defer { world.killSpawned() }
                do {
                    try await body(world)
                } catch {
                    await world.stopAgents()
                    throw error
                }
                await world.stopAgents()
                for token in await state.mintedTokens { session.sandbox.leaks.watch(token) }
                try session.sandbox.assertNoLeaks(world.recorded)
            }
        } catch {
            try? await session.finish()
            throw error
        }
        try await session.finish()
    }

    // MARK: Running things

    /// Keeps `result` for the leak scan; a stdout that legitimately holds a token is left out.
    package func record(_ result: CLIResult, stdoutHoldsToken: Bool = false) {
        var kept = result
        if stdoutHoldsToken { kept.stdout = "" }
        lock.withLock { results.append(kept) }
    }

    package var recorded: [CLIResult] { lock.withLock { results } }

    /// `rc-agent ARGS` in the sandbox.
    package func rcAgent(
        _ arguments: [String], stdin: String? = nil, env: [String: String] = [:], stdoutHoldsToken: Bool = false
    ) async throws -> CLIResult {
        let result = try await sandbox.rcAgent(arguments, stdin: stdin, env: env)
        record(result, stdoutHoldsToken: stdoutHoldsToken)
        return result
    }

    /// `rc-agent start`, which must succeed.
    package func start() async throws {
        let result = try await rcAgent(["start"])
        try #require(result.status == 0, "start: \(result)")
    }

    /// `rc-agent token ARGS --profile PROFILE`; a token it prints is watched for leaks.
    package func tokenCLI(_ arguments: [String] = [], env: [String: String] = [:]) async throws -> CLIResult {
        let result = try await session.run(["token"] + arguments, env: env)
        if result.status == 0 {
            let json = try? JSONSerialization.jsonObject(with: Data(result.stdout.utf8)) as? [String: Any]
            sandbox.leaks.watch(json?["access_token"] as? String ?? result.stdout.trimmingCharacters(in: .whitespacesAndNewlines))
        }
        record(result, stdoutHoldsToken: result.status == 0)
        return result
    }

    /// curl on an agent's socket (default: the sandbox's). A token in a 200 answer is watched.
    package func curl(
        _ target: String, method: String = "GET", socket: String? = nil, headers: [String] = [],
        asUID uid: UInt32? = nil
    ) async throws -> SocketReply {
        let reply = try await curlUnixSocket(
            socket: socket ?? self.socket, target, method: method, headers: headers, asUID: uid,
            environment: sandbox.environment)
        let holdsToken = reply.status == 200 && target.hasPrefix("/v1/token")
        if holdsToken {
            sandbox.leaks.watch(reply.json?["access_token"] as? String ?? reply.body.trimmingCharacters(in: .whitespacesAndNewlines))
        }
        record(reply.run, stdoutHoldsToken: holdsToken)
        return reply
    }

    /// `GET /v1/token?profile=PROFILE` and `query` (`&…`).
    package func token(_ query: String = "") async throws -> SocketReply {
        try await curl("/v1/token?profile=\(profile)" + query)
    }

    /// The profile names `GET /v1/status` lists.
    package func statusProfiles() async throws -> [String] {
        let reply = try await curl("/v1/status")
        return (reply.json?["profiles"] as? [[String: Any]] ?? []).compactMap { $0["profile"] as? String }
    }

    /// This world's profile in `GET /v1/status`.
    package func profileStatus() async throws -> [String: Any]? {
        let reply = try await curl("/v1/status")
        return (reply.json?["profiles"] as? [[String: Any]])?.first { $0["profile"] as? String == profile }
    }

    // MARK: Daemons

    /// Spawns `executable ARGS` in the background, its output in the sandbox's `state/NAME.log`.
    package func spawn(_ executable: String, _ arguments: [String], name: String) throws -> BackgroundProcess {
        let process = try BackgroundProcess(
            executable, arguments, environment: sandbox.environment, logPath: sandbox.root + "/state/\(name).log")
        lock.withLock { spawned.append(process) }
        return process
    }

    /// `rc-agent daemon --socket SOCKET` in the foreground (this test's child), once it answers.
    package func daemon(socket: String? = nil) async throws -> BackgroundProcess {
        let path = socket ?? self.socket
        let process = try spawn(Binaries.rcAgent, ["daemon", "--socket", path], name: "daemon-\(spawnedCount)")
        for _ in 0..<300 {
            if try await AgentClient(socketPath: path).isAlive() { return process }
            if process.exitStatus != nil { break }
            try await Task.sleep(nanoseconds: 100_000_000)
        }
        throw SocketSetupError("the daemon did not start on \(path)\n\(process.log)")
    }

    private var spawnedCount: Int { lock.withLock { spawned.count } }

    /// `rc-agent stop`, SIGTERM to what this test spawned, and a check that no agent is left.
    package func stopAgents() async {
        if let stop = try? await rcAgent(["stop"]) { #expect(stop.status == 0, "stop: \(stop)") }
        for process in lock.withLock({ spawned }) {
            process.send(SIGTERM)
            if await process.waitForExit(seconds: 10) == nil { process.kill() }
        }
        let left = RunningAgents.pids(mentioning: sandbox.root)
        let log = (try? String(contentsOfFile: sandbox.root + "/state/rc-agent/agent.log", encoding: .utf8)) ?? ""
        #expect(await RunningAgents.waitUntilGone(left), "agents left running: \(left)\n\(log.suffix(3000))")
    }

    /// SIGKILL for anything this test spawned that still runs.
    package func killSpawned() {
        for process in lock.withLock({ spawned }) { process.kill() }
    }
}
