import RCAgentClient
import RCAgentCore
import RCAgentDaemon
import RCAgentLive

/// What `rc-agent rotate` tells the person rotating.
enum RotationView {
    /// Where the new secret comes from, shown before it is asked for.
    static let instructions = RotationService.resetSecretStep + "\n" + """
        Do not press "Generate Access Key": that is not the secret rc-agent needs.
        The stored secret stays in use until the new one has been verified.

        """

    /// The closing lines of a successful rotation.
    static func text(_ outcome: RotationOutcome, agent: AgentNotice.Result) -> String {
        var out = outcome.notes.map { "note: \($0)\n" }.joined()
        let profile = outcome.credential.profile
        out += "Rotated: the tenant accepted the new secret and it is stored for profile '\(profile)'.\n"
        out += "Next rotation due \(RotationStatus.day(outcome.rotation.dueAt)) "
        out += "(every \(outcome.rotation.rotateAfterDays) days; age now 0 days).\n"
        switch agent {
        case .noAgent:
            out += "No agent is running; the next one will use the new secret.\n"
        case .refreshed(let expiresAt):
            out += "The running agent dropped its old token and fetched one with the new secret"
            out += expiresAt.map { " (valid until \($0)).\n" } ?? ".\n"
        case .reloaded:
            out += "The running agent re-read the config.\n"
        case .failed(let message):
            out += "warning: the running agent could not be refreshed: \(message)\n"
            out += "  run `rc-agent stop` and start it again\n"
        case .refused:
            // The refusal itself ends the command (exit 3).
            break
        }
        return out
    }
}
