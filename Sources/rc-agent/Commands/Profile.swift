import ArgumentParser
import FoundationEssentials
import RCAgentClient
import RCAgentCore
import RCAgentDaemon
import RCAgentLive

/// `rc-agent profile list|use`; `rc-agent profiles` is `profile list`.
struct Profile: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "profile",
        abstract: "List profiles and choose the default one.",
        subcommands: [ProfileList.self, ProfileUse.self],
        defaultSubcommand: ProfileList.self,
        aliases: ["profiles"])
}

/// `rc-agent profile list [--json]`
struct ProfileList: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "list",
        abstract: "One line per profile: URL, Client ID, where the secret lives, its age, the agent's token.",
        discussion: """
            `*` marks the profile commands use here (--profile, then $RC_PROFILE, then [defaults] profile, \
            then 'default'). The token column is filled when an agent runs; this command never starts one.
            """)

    @OptionGroup var global: GlobalOptions
    @OptionGroup var socketOption: SocketOption

    @Flag(help: "Print one JSON document.")
    var json = false

    func run() async throws {
        try await runReportingErrors {
            let settings = try global.settings()
            var report = await StatusReport.collect(
                settings: settings, onlyProfile: nil, store: LiveEnvironment(settings).credentialStore(), now: Date())
            report.agent = try await AgentView.collect(socketPath: socketOption.socketPath, autostart: false, settings: settings)
            Terminal.standardOutput.write(
                json ? ProfileListView.json(report, settings: settings) : ProfileListView.text(report, settings: settings))
            return .ok
        }
    }
}

/// `rc-agent profile use NAME`
struct ProfileUse: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "use",
        abstract: "Make NAME the default profile ([defaults] profile in the config).",
        discussion: """
            Refuses a profile with no stored credentials. The rest of the config file (comments, other \
            settings) stays as it was. A running agent re-reads the config (POST /v1/reload), so a request \
            without a profile gets the new default. --profile and $RC_PROFILE still win over the default.
            """)

    @OptionGroup var global: GlobalOptions
    @OptionGroup var socketOption: SocketOption

    @Argument(help: "The profile to use by default.")
    var name: String

    func validate() throws {
        guard ProfileName.isValid(name) else { throw ValidationError("invalid profile name '\(name)': \(ProfileName.rule)") }
    }

    func run() async throws {
        try await runReportingErrors {
            let settings = try global.settings()
            try await DefaultProfileService(store: LiveEnvironment(settings).credentialStore(), configPath: settings.configPath)
                .use(profile: name)
            let agent = await AgentNotice.configChanged(socketPath: socketOption.socketPath)
            Terminal.standardError.write(ProfileUseView.text(profile: name, settings: settings, agent: agent))
            if let refusal = agent.refusal { throw refusal }
            return .ok
        }
    }
}
