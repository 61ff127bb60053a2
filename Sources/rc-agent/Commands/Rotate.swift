import ArgumentParser
import FoundationEssentials
import RCAgentClient
import RCAgentCore
import RCAgentDaemon
import RCAgentLive

/// `rc-agent rotate [--client-secret-stdin] [--client-id ID] [--resume]`
struct Rotate: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "rotate",
        abstract: "Replace the profile's Client Secret with a new one, verified before it is stored.",
        discussion: """
            Get the new secret in Risk Cloud: person icon → Profile → Access Key → Reset Secret Key. \
            The new secret is checked against the tenant first — the one the credentials were stored \
            for; RC_AGENT_URL or a config naming another is refused before anything is sent — and if it \
            is refused, the stored credentials stay exactly as they were. A running agent is told to use \
            the new secret. Profiles whose secret comes from the environment or a delivered file are \
            refused with where to change it instead (exit 64).
            """)

    @OptionGroup var global: GlobalOptions
    @OptionGroup var agent: SocketOption
    @OptionGroup var prompt: PromptOption

    @Flag(name: .customLong("client-secret-stdin"), help: "Read the new Client Secret from standard input.")
    var clientSecretStdin = false

    @Option(name: .customLong("client-id"), help: "A new Client ID too (default: keep the stored one).")
    var clientID: String?

    @Flag(help: "Finish a rotation that was interrupted (keeps the newest stored secret, removes the older).")
    var resume = false

    func run() async throws {
        try await runReportingErrors {
            let settings = try global.settings()
            let profile = settings.profile
            let live = LiveEnvironment(settings)
            let store = prompt.credentialStore(live)
            if resume {
                let cleaned = try await RotationService.resume(profile: profile, store: store)
                Terminal.standardError.write(cleaned
                    ? "finished the interrupted rotation of profile '\(profile)': the older secret was removed\n"
                    : "nothing to finish: profile '\(profile)' has one stored secret\n")
                return .ok
            }
            let existing = try await RotationService.current(profile: profile, store: store)
            let tenant = try existing.tenant(requested: settings.requestedTenant(profile: profile))
            Terminal.standardError.write(RotationView.instructions)
            let secret = try SecretInput.read(fromStandardInput: clientSecretStdin, prompt: "New Client Secret (input hidden): ")
            let outcome = try await live.withTokenClient(profile: profile) { tokens in
                try await RotationService(store: store, tokens: tokens, clock: live.clock).rotate(
                    from: existing, tenant: tenant, newSecret: secret, newClientID: clientID,
                    policy: RotationPolicy(config: settings.config, profile: profile))
            }
            let agentResult = await AgentNotice.credentialsChanged(
                profile: profile, socketPath: agent.socketPath, fetchNew: true)
            Terminal.standardError.write(RotationView.text(outcome, agent: agentResult))
            if let refusal = agentResult.refusal { throw refusal }
            return .ok
        }
    }
}
