import ArgumentParser
import FoundationEssentials
import RCAgentClient
import RCAgentCore
import RCAgentDaemon
import RCAgentLive

/// `rc-agent token [--format text|json|header|env] [--refresh]`: the profile's bearer token from the
/// agent, in the form the consuming tool reads.
struct Token: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "token",
        abstract: "Print a bearer token for the profile (only the token and a newline on stdout).",
        discussion: """
            Asks the running agent first, before the config file is read (without --profile or RC_PROFILE: \
            the agent's default profile). Starts the agent if none is running, unless --no-autostart or \
            RC_AGENT_NO_AUTOSTART=1. With \
            RC_CLIENT_ID and RC_CLIENT_SECRET (and RC_AGENT_URL) set, the token is fetched by this process \
            instead: no agent, no keyring, nothing written. When the keyring is locked and stderr is a \
            terminal, the desktop's unlock prompt shows (see --no-prompt).

            Formats: text (the token), json (the agent's answer: access_token, expires_at, expires_in, \
            profile, url), header (`Authorization: Bearer TOKEN`, for `curl -H @-`, so the token is never \
            in an argv), env (RC_TOKEN=… and RC_URL=… lines, for `set -a; . <(rc-agent token --format env)` \
            or a .env file).

            A token generated elsewhere for the same Client ID (the UI's Generate Access Key, Postman, \
            another script) makes the one the agent holds invalid. A script that gets a 401 asks for a \
            new one with --refresh and retries once.
            """)

    @OptionGroup var global: GlobalOptions
    @OptionGroup var agent: AgentOptions
    @OptionGroup var prompt: PromptOption

    @Option(name: .customLong("min-valid"), help: "Seconds the token must still be valid for (default 60).")
    var minValid: Int?

    @Option(help: "Output format: text, json, header or env (default text).")
    var format: TokenFormat?

    @Flag(help: "Same as --format json.")
    var json = false

    @Flag(help: "Fetch a new token now, even if the held one is still valid (after a 401 from the tenant).")
    var refresh = false

    func validate() throws {
        if json, let format, format != .json { throw ValidationError("--json and --format \(format.rawValue) disagree") }
        if refresh, minValid != nil { throw ValidationError("--refresh fetches a new token: --min-valid has no meaning with it") }
    }

    func run() async throws {
        try await runReportingErrors {
            let environment = ProcessInfo.processInfo.environment
            let token: TokenResponse
            if let answered = try await fromListeningAgent(environment: environment) {
                token = answered
            } else {
                let settings = try global.settings()
                token = try await agent.withTokens(settings, prompt: prompt) {
                    refresh
                        ? try await $0.refresh(profile: settings.profile)
                        : try await $0.token(profile: settings.profile, minValid: minValid)
                }
            }
            try TokenView.print(token, format: json ? .json : format ?? .text, environment: environment)
            return .ok
        }
    }

    /// The token from an agent already listening, asked before the config file is read: without
    /// `--profile` or `RC_PROFILE` the agent's default profile (PROTOCOL.md). Nil when the config is
    /// needed after all: `--config` names one, the credentials come from the environment (fetched
    /// here), nothing listens (autostart), or the agent's keyring is locked (the unlock prompt).
    private func fromListeningAgent(environment: [String: String]) async throws -> TokenResponse? {
        guard global.config == nil, !CredentialEnvironment.isPresent(environment) else { return nil }
        let profile = Settings.explicitProfile(flag: global.profile, environment: environment)
        do {
            return try await AgentClient(socketPath: agent.socketPath)
                .tokenIfListening(profile: profile, minValid: minValid, refresh: refresh)
        } catch let error as AgentError where error.code == .keyringLocked {
            return nil
        }
    }
}

/// The forms `rc-agent token` prints a token in.
enum TokenFormat: String, CaseIterable, ExpressibleByArgument {
    case text, json, header, env
}

/// `rc-agent token`'s stdout: the token and nothing else a consumer would have to strip.
enum TokenView {
    /// The token on stdout, after the rotation reminder (if one is due) on stderr.
    static func print(_ token: TokenResponse, format: TokenFormat, environment: [String: String]) throws {
        ReminderView.emit(for: token, environment: environment)
        Terminal.standardOutput.write(try text(token, format: format))
    }

    static func text(_ token: TokenResponse, format: TokenFormat) throws -> String {
        let value = token.accessToken.reveal()
        switch format {
        case .text: return value + "\n"
        case .json: return try token.jsonText()
        case .header: return "Authorization: Bearer \(value)\n"
        case .env: return "RC_TOKEN=\(ShellQuote.quote(value))\nRC_URL=\(ShellQuote.quote(token.url))\n"
        }
    }
}

/// `rc-agent token` with no arguments, the form scripts run most, answered before ArgumentParser
/// loads: its reflection over the commands' options (runtime conformance lookups over the whole
/// binary) and a hop to the concurrency pool and back took about half of the process's time.
/// The same steps as ``Token``'s when an agent listens: hardened first, the default profile
/// (`RC_PROFILE`, else the agent's), the same request, reminder and output, the same error
/// message and exit status. Anything else goes to ArgumentParser: another argument, credentials
/// in the environment, nothing listening (autostart), a locked keyring (the unlock prompt).
enum TokenShortcut {
    /// The exit status, or nil when ArgumentParser runs the command instead.
    static func run(arguments: [String]) -> Int32? {
        guard arguments.count == 2, arguments[1] == "token" else { return nil }
        let environment = ProcessInfo.processInfo.environment
        guard !CredentialEnvironment.isPresent(environment) else { return nil }
        hardenProcess()
        let profile = Settings.explicitProfile(flag: nil, environment: environment)
        do {
            let client = AgentClient(socketPath: AgentSocket.path(flag: nil, environment: environment))
            guard let token = try client.tokenIfListeningBlocking(profile: profile) else { return nil }
            try TokenView.print(token, format: .text, environment: environment)
            return ExitStatus.ok.rawValue
        } catch let error as AgentError where error.code == .keyringLocked {
            return nil
        } catch let error as any RCAgentError {
            return report(error)
        } catch {
            return nil
        }
    }
}
