import Foundation

/// Looks at the private test keyring the way a user would, with secret-tool.
package enum TestKeyring {
    /// `secret-tool search --all service rc-agent profile PROFILE`: the attribute lines, secret lines removed.
    package static func attributes(profile: String, environment: [String: String]) async throws -> [String: String] {
        let result = try await runProcess(
            "/usr/bin/secret-tool", ["search", "--all", "service", "rc-agent", "profile", profile],
            environment: environment)
        var attributes: [String: String] = [:]
        for line in (result.stdout + result.stderr).split(separator: "\n") where line.hasPrefix("attribute.") {
            let parts = line.dropFirst("attribute.".count).split(separator: "=", maxSplits: 1)
            guard parts.count == 2 else { continue }
            attributes[parts[0].trimmingCharacters(in: .whitespaces)] = parts[1].trimmingCharacters(in: .whitespaces)
        }
        return attributes
    }

    /// The stored secret, read with `secret-tool lookup` (the test's own value, compared, never printed).
    package static func secret(profile: String, environment: [String: String]) async throws -> String? {
        let result = try await runProcess(
            "/usr/bin/secret-tool", ["lookup", "service", "rc-agent", "profile", profile], environment: environment)
        return result.status == 0 ? result.stdout : nil
    }
}
