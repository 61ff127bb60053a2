import Foundation

/// The kernel keyring as the `keyctl` CLI shows it: what the `keyctl` backend stored.
package enum KernelKeyring {
    /// The key id of `rc-agent:PROFILE` in the persistent keyring linked into `@u`, or nil.
    package static func keyID(profile: String) async throws -> String? {
        let found = try await keyctl(["search", "@u", "user", "rc-agent:\(profile)"])
        return found.status == 0 ? found.stdout.trimmingCharacters(in: .whitespacesAndNewlines) : nil
    }

    /// `keyctl describe ID`: `ID: PERM UID GID TYPE: DESCRIPTION`.
    package static func describe(_ id: String) async throws -> String {
        try await keyctl(["describe", id]).stdout
    }

    /// `keyctl rdescribe ID` fields: type, uid, gid, perm (hex), description.
    package static func permissions(_ id: String) async throws -> UInt32? {
        let fields = try await keyctl(["rdescribe", id]).stdout.split(separator: ";")
        guard fields.count >= 4 else { return nil }
        return UInt32(fields[3], radix: 16)
    }

    /// `keyctl pipe ID`: the payload.
    package static func payload(_ id: String) async throws -> String {
        try await keyctl(["pipe", id]).stdout
    }

    /// `keyctl show @u`: the user keyring's tree.
    package static func showUser() async throws -> String {
        try await keyctl(["show", "@u"]).stdout
    }

    /// Runs `keyctl ARGS`.
    package static func keyctl(_ arguments: [String]) async throws -> CLIResult {
        try await runProcess("/usr/bin/keyctl", arguments, environment: ProcessInfo.processInfo.environment)
    }
}

extension Sandbox {
    /// `rc-agent ARGS` in a session keyring of its own (`keyctl session -`), with no D-Bus session
    /// bus at all, `extra` added to the environment.
    package func rcAgentWithoutBus(_ arguments: [String], stdin: String? = nil, env extra: [String: String] = [:])
        async throws -> CLIResult
    {
        var environment = self.environment.merging(extra) { $1 }
        environment["DBUS_SESSION_BUS_ADDRESS"] = nil
        return try await runProcess(
            "/usr/bin/keyctl", ["session", "-", Binaries.rcAgent] + arguments, stdin: stdin, environment: environment)
    }

    /// `rc-agent ARGS` with exactly `environment` (as `env -i` gives it), in its own session keyring.
    package func rcAgentExactly(_ arguments: [String], stdin: String? = nil, environment: [String: String])
        async throws -> CLIResult
    {
        try await runProcess(
            "/usr/bin/keyctl", ["session", "-", Binaries.rcAgent] + arguments, stdin: stdin, environment: environment)
    }
}
