import RCAgentCore
/// Tells a running agent that a profile's credentials changed (login, rotate, logout), so it drops
/// its cached token and any `credentials_rejected` state instead of serving the old one.
public enum AgentNotice {
    /// What happened on the agent side, for the command's closing lines.
    public enum Result: Sendable, Equatable {
        /// No agent answers on the socket: nothing to tell.
        case noAgent
        /// The agent forgot its token (and, when asked, fetched a new one that expires at this RFC 3339 time).
        case refreshed(expiresAt: String?)
        /// The agent re-read the config file.
        case reloaded
        /// The agent answered with an error (its message; never a secret).
        case failed(String)
        /// The socket is another user's: nothing was sent. The command ends with this error
        /// (exit 3) after reporting what it did.
        case refused(UntrustedAgentError)

        /// The refusal to end the command with, if the socket was refused.
        public var refusal: UntrustedAgentError? {
            if case .refused(let error) = self { return error }
            return nil
        }
    }

    /// Best effort: a failure here never undoes what the command already did.
    public static func credentialsChanged(profile: String, socketPath: String, fetchNew: Bool) async -> Result {
        await tell(socketPath: socketPath) { client in
            try await client.forget(profile: profile)
            guard fetchNew else { return .refreshed(expiresAt: nil) }
            return .refreshed(expiresAt: try await client.token(profile: profile).expiresAt)
        }
    }

    /// The config file changed (`profile use`): the agent re-reads it (`POST /v1/reload`), so a
    /// request without a profile gets the new default. Best effort, like ``credentialsChanged``.
    public static func configChanged(socketPath: String) async -> Result {
        await tell(socketPath: socketPath) { client in
            try await client.reload()
            return .reloaded
        }
    }

    private static func tell(socketPath: String, _ body: (AgentClient) async throws -> Result) async -> Result {
        let client = AgentClient(socketPath: socketPath, timeout: 30)
        do {
            guard try await client.isAlive() else { return .noAgent }
        } catch {
            return .refused(error)
        }
        do {
            return try await body(client)
        } catch let error as UntrustedAgentError {
            return .refused(error)
        } catch let error as RCAgentError {
            return .failed(error.message)
        } catch {
            return .failed("\(error)")
        }
    }
}
