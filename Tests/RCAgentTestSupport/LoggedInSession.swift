import Foundation
import RiskCloudStandIn
import Testing

/// A sandbox with one unique profile for tests that need stored credentials (doctor, api):
/// log in against a stand-in, run commands for that profile, start/stop an agent, log out.
package struct LoggedInSession: Sendable {
    package let sandbox: Sandbox
    package let profile = "it-" + String(UUID().uuidString.prefix(8)).lowercased()
    package let clientID = "client-" + String(UUID().uuidString.prefix(6))
    package let secret = "s3cr3t-" + UUID().uuidString

    package init() throws {
        sandbox = try Sandbox()
        sandbox.leaks.watch(secret)
    }

    /// `rc-agent login` for the profile, the secret on stdin; expects success.
    @discardableResult
    package func login(_ url: String, clientID: String? = nil, secret: String? = nil, extra: [String] = []) async throws
        -> CLIResult
    {
        let result = try await attemptLogin(url, clientID: clientID, secret: secret, extra: extra)
        #expect(result.status == 0, "login: \(result)")
        return result
    }

    /// `rc-agent login` for the profile, the secret on stdin, whatever the outcome.
    package func attemptLogin(_ url: String, clientID: String? = nil, secret: String? = nil, extra: [String] = []) async throws
        -> CLIResult
    {
        try await sandbox.rcAgent(
            ["login", "--profile", profile, "--url", url, "--client-id", clientID ?? self.clientID,
             "--client-secret-stdin"] + extra,
            stdin: (secret ?? self.secret) + "\n")
    }

    /// Sets the profile's own `ca_file` in the config file (the only line of its table).
    package func setCAFile(_ path: String) throws {
        let directory = (sandbox.configPath as NSString).deletingLastPathComponent
        try FileManager.default.createDirectory(
            atPath: directory, withIntermediateDirectories: true, attributes: [.posixPermissions: 0o700])
        let text = (try? String(contentsOfFile: sandbox.configPath, encoding: .utf8)) ?? ""
        let kept = text.components(separatedBy: "\n").filter { !$0.hasPrefix("ca_file = ") }
        var lines = kept.joined(separator: "\n")
        if !lines.contains("[profiles.\(profile)]") { lines += "\n[profiles.\(profile)]\n" }
        lines = lines.replacingOccurrences(
            of: "[profiles.\(profile)]\n", with: "[profiles.\(profile)]\nca_file = \"\(path)\"\n")
        try lines.write(toFile: sandbox.configPath, atomically: true, encoding: .utf8)
    }

    /// `rc-agent ARGS --profile PROFILE`.
    package func run(_ arguments: [String], stdin: String? = nil, env: [String: String] = [:]) async throws -> CLIResult {
        try await sandbox.rcAgent(arguments + ["--profile", profile], stdin: stdin, env: env)
    }

    /// Starts an agent on the sandbox's socket.
    package func startAgent() async throws {
        let result = try await sandbox.rcAgent(["start"])
        #expect(result.status == 0, "start: \(result)")
    }

    /// Stops the agent (if any) and removes the credentials.
    package func finish() async throws {
        _ = try await sandbox.rcAgent(["stop"])
        _ = try await sandbox.rcAgent(["logout", "--profile", profile])
        sandbox.remove()
    }
}

extension LoggedInSession {
    /// A fresh session logged in against a fresh stand-in (one client: the session's id and
    /// secret): runs `body` with the session, the stand-in's state and its URL, then stops the
    /// agent and logs out.
    package static func withLoggedIn(
        restricted: Bool = false, _ body: (LoggedInSession, StandInState, String) async throws -> Void
    ) async throws {
        let session = try LoggedInSession()
        let state = StandInState()
        await state.addClient(id: session.clientID, secret: session.secret, restricted: restricted)
        try await withStandIn(state) { url in
            try await session.login(url)
            try await body(session, state, url)
        }
        try await session.finish()
    }
}
