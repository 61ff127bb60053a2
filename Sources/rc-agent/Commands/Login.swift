import ArgumentParser
import FoundationEssentials
import RCAgentClient
import RCAgentCore
import RCAgentDaemon
import RCAgentLive

/// `rc-agent login [--url URL] [--client-id ID] [--client-secret-stdin] [--no-verify]`
struct Login: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "login",
        abstract: "Verify a Client ID and Secret against the tenant and store them (desktop or kernel keyring).",
        discussion: """
            Find them in Risk Cloud: person icon → Profile → Access Key. Missing values are asked for \
            on the terminal, the secret with echo off. There is no option that takes the secret on the \
            command line: pipe it in with --client-secret-stdin instead. A failed login leaves earlier \
            credentials and the config untouched.
            """)

    @OptionGroup var global: GlobalOptions
    @OptionGroup var agent: SocketOption
    @OptionGroup var prompt: PromptOption

    @Option(help: "Tenant URL, e.g. acme.logicgate.com (default: $RC_AGENT_URL, then the config).")
    var url: String?

    @Option(name: .customLong("client-id"), help: "Client ID (asked for when missing).")
    var clientID: String?

    @Flag(name: .customLong("client-secret-stdin"), help: "Read the Client Secret from standard input.")
    var clientSecretStdin = false

    @Flag(name: .customLong("no-verify"), help: "Store without requesting a token first.")
    var noVerify = false

    @Option(help: """
        Where to store them: secret-service (the desktop keyring, default) or keyctl (the kernel keyring: \
        survives logout, not a reboot; for SSH sessions and servers). Written to the profile's config.
        """)
    var backend: CredentialBackend?

    func validate() throws {
        if let backend, !backend.isStore {
            throw ValidationError(
                "--backend \(backend.rawValue) is a source rc-agent only reads, nothing to log in to: "
                    + (backend == .env
                        ? "export RC_CLIENT_ID, RC_CLIENT_SECRET and RC_AGENT_URL instead"
                        : "set `backend = \"file\"`, `client_id` and `client_secret_file` in the profile's config instead"))
        }
    }

    func run() async throws {
        try await runReportingErrors {
            let settings = try global.settings()
            let profile = settings.profile
            let live = LiveEnvironment(settings)
            let store = prompt.credentialStore(live, backend: backend)
            try LoginService.checkWritable(profile: profile, store: store)
            let tenant = try settings.tenantURL(profile: profile, flag: url)
                ?? TenantURL(parsing: try ask("Tenant URL (e.g. acme.logicgate.com): ", what: "--url"))
            let id = try clientID ?? ask("Client ID: ", what: "--client-id")
            let secret = try SecretInput.read(fromStandardInput: clientSecretStdin, prompt: "Client Secret (input hidden): ")
            if !noVerify && Terminal.standardError.isTerminal {
                Terminal.standardError.write("Verifying with \(tenant.base)…\n")
            }
            let request = LoginRequest(
                profile: profile, tenant: tenant, clientID: id, secret: secret, verify: !noVerify, backend: backend)
            let outcome = try await live.withTokenClient(profile: profile) { tokens in
                try await LoginService(
                    store: store, tokens: tokens, clock: live.clock,
                    configPath: settings.configPath,
                    previous: live.storeBeforeLogin(profile: profile, prompt: prompt.unlockPrompt(live))
                ).login(request)
            }
            Terminal.standardError.write(LoginView.text(outcome))
            // A running agent must drop a token (or a credentials_rejected latch) from the old secret.
            let notice = await AgentNotice.credentialsChanged(profile: profile, socketPath: agent.socketPath, fetchNew: false)
            if let refusal = notice.refusal { throw refusal }
            return .ok
        }
    }

    private func ask(_ prompt: String, what: String) throws -> String {
        guard let answer = Terminal.prompt(prompt, hidden: false) else {
            throw UsageError("no terminal to ask on: pass \(what)")
        }
        return answer
    }
}
