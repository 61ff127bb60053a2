import RCAgentCore

extension AgentView {
    /// Asks the agent on `socketPath`, starting one first when `autostart` is on. Throws
    /// ``UntrustedAgentError`` when the socket is another user's.
    public static func collect(socketPath: String, autostart: Bool, settings: Settings) async throws(UntrustedAgentError)
        -> AgentView
    {
        do {
            let client = try await AgentLauncher.connect(socketPath: socketPath, autostart: autostart, settings: settings)
            return AgentView(running: true, socket: socketPath, status: try await client.status(), error: nil, failedToStart: false)
        } catch let refusal as UntrustedAgentError {
            throw refusal
        } catch let error as RCAgentError {
            return AgentView(running: false, socket: socketPath, status: nil, error: error.message, failedToStart: autostart)
        } catch {
            return AgentView(running: false, socket: socketPath, status: nil, error: "\(error)", failedToStart: autostart)
        }
    }
}
