import ArgumentParser
import FoundationEssentials
import RCAgentClient
import RCAgentCore
import RCAgentDaemon
import RCAgentLive

/// `rc-agent exec -- CMD ARGS…`: CMD with `RC_TOKEN`, `RC_URL` and `RC_PROFILE` from the agent.
struct Exec: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "exec",
        abstract: "Run a command with RC_TOKEN, RC_URL and RC_PROFILE set.",
        discussion: """
            The command replaces rc-agent (exec), so it keeps stdin/stdout/stderr, receives every signal \
            directly, and its exit status is the one returned. 127: command not found, 126: not executable. \
            RC_PROFILE names the profile, so an `rc-agent` the command runs uses the same one. The command \
            gets the token, never the secret: RC_CLIENT_SECRET and RC_CLIENT_SECRET_FILE are removed from its \
            environment.

            RC_TOKEN is fixed for the command's life. A token generated elsewhere for the same Client ID \
            (the UI, Postman, another script) makes it invalid: a long-running command that gets a 401 \
            takes a new one with `rc-agent token --refresh` (or sends its calls through `rc-agent api` or \
            the agent's proxy, which retry once by themselves).
            """)

    @OptionGroup var global: GlobalOptions
    @OptionGroup var agent: AgentOptions
    @OptionGroup var prompt: PromptOption

    @Option(name: .customLong("min-valid"), help: "Seconds the token must still be valid for (default 60).")
    var minValid: Int?

    @Argument(parsing: .captureForPassthrough, help: "The command and its arguments (after --).")
    var command: [String] = []

    private static let helpFlags: Set = ["--help", "-h", "-help"]

    /// The command and its arguments, without the `--` that separates them from rc-agent's options.
    private var argv: [String] { command.first == "--" ? Array(command.dropFirst()) : command }

    func validate() throws {
        // `captureForPassthrough` takes everything from the first word it does not know, so a
        // help flag before `--` reaches us as the command instead of as ArgumentParser's own flag.
        if let first = command.first, Self.helpFlags.contains(first) { throw CleanExit.helpRequest(self) }
        guard !argv.isEmpty else { throw ValidationError("give the command to run: rc-agent exec -- CMD ARGS…") }
    }

    func run() async throws {
        let argv = argv
        let program = argv[0]
        var token: TokenResponse?
        try await runReportingErrors {
            let settings = try global.settings()
            let served = try await agent.withTokens(settings, prompt: prompt) {
                try await $0.token(profile: settings.profile, minValid: minValid)
            }
            ReminderView.emit(for: served, settings: settings)
            token = served
            return .ok
        }
        guard let token else { return }
        let failure = CommandExec.replaceProcess(
            command: program, arguments: Array(argv.dropFirst()),
            environment: ["RC_TOKEN": token.accessToken.reveal(), "RC_URL": token.url, "RC_PROFILE": token.profile],
            removing: CredentialEnvironment.secretVariables)
        Terminal.standardError.write("rc-agent: \(failure.message)\n")
        throw ExitCode(failure.status)
    }
}
