import FoundationEssentials
import RCAgentClient
import RCAgentCore
import RCAgentDaemon
import RCAgentLive

/// The lines `rc-agent login` prints on success (stderr: stdout stays free for scripts).
enum LoginView {
    static func text(_ outcome: LoginOutcome) -> String {
        let credential = outcome.credential
        var out = outcome.notes.map { "note: \($0)\n" }.joined()
        out += "Logged in: profile '\(credential.profile)' at \(credential.url) "
        out += "(client id \(StatusReport.shorten(credential.clientID))).\n"
        if let token = outcome.token {
            out += "The tenant accepted the credentials; its token is valid until "
            out += "\(WireJSON.rfc3339(token.expiresAt)).\n"
        } else {
            out += "Not verified (--no-verify): the first token request will tell.\n"
        }
        switch outcome.backend {
        case .keyctl:
            out += outcome.replaced
                ? "The earlier credentials for this profile were replaced in the kernel keyring.\n"
                : "Stored in the kernel keyring as \(KeyctlStore.prefix)\(credential.profile) (`keyctl show @u`).\n"
            out += "It \(CredentialBackend.keyctlLifetime).\n"
        default:
            out += outcome.replaced
                ? "The earlier credentials for this profile were replaced in the keyring.\n"
                : "Stored in your keyring as \"Risk Cloud credentials (\(credential.profile))\".\n"
        }
        if let previous = outcome.previous {
            if let error = previous.error {
                out += "warning: could not remove the profile's earlier credentials from \(previous.backend.rawValue): "
                out += "\(error)\nRemove them there yourself.\n"
            } else if previous.removed {
                out += "Removed the profile's earlier credentials from \(previous.backend.rawValue).\n"
            }
        }
        return out
    }
}
