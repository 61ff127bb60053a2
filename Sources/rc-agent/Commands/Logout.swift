import ArgumentParser
import RCAgentClient
import RCAgentCore
import RCAgentDaemon
import RCAgentLive

/// `rc-agent logout [--all]`
struct Logout: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "logout",
        abstract: "Remove the profile's credentials from the keyring (idempotent).",
        discussion: """
            Works on the stores (secret-service, keyctl): each is gone over, whichever the profile uses \
            now, and one that cannot be reached is reported without stopping the others. A profile \
            whose credentials come from the environment or a file is refused with where to remove \
            them instead (exit 64). The running agent forgets its token. The tenant does not: a token \
            already issued stays valid until it expires or a new one is generated (Risk Cloud has no \
            revoke endpoint). To cut it off, generate a new one in Risk Cloud (Profile → Access Key → \
            Generate Access Key) and Reset Secret Key.
            """)

    @OptionGroup var global: GlobalOptions
    @OptionGroup var agent: SocketOption
    @OptionGroup var prompt: PromptOption

    @Flag(help: "Remove every rc-agent item from every store (desktop and kernel keyring), for all profiles.")
    var all = false

    func run() async throws {
        try await runReportingErrors {
            let settings = try global.settings()
            let live = LiveEnvironment(settings)
            let outcome = try await LogoutService(
                store: prompt.credentialStore(live), stores: live.writableStores(prompt: prompt.unlockPrompt(live))
            ).logout(profile: all ? nil : settings.profile)
            let removed = outcome.removed
            var refusal: UntrustedAgentError?
            for profile in removed where refusal == nil {
                refusal = await AgentNotice.credentialsChanged(
                    profile: profile, socketPath: agent.socketPath, fetchNew: false
                ).refusal
            }
            Terminal.standardError.write(removed.isEmpty
                ? "nothing to remove: no credentials stored\n"
                : "removed credentials for \(removed.joined(separator: ", "))\n"
                    + "note: \(RiskCloudError.tokenOutlivesLogout)\n")
            for (backend, error) in outcome.unreachable {
                let message = (error as? any RCAgentError).map(\.description) ?? "\(error)"
                Terminal.standardError.write("warning: could not reach \(backend.rawValue) (nothing removed there): \(message)\n")
            }
            if let refusal { throw refusal }
            return .ok
        }
    }
}
