import ArgumentParser
import FoundationEssentials
import RCAgentClient
import RCAgentCore
import RCAgentDaemon
import RCAgentLive

/// `rc-agent daemon`: the agent in the foreground (what systemd and tests run).
struct Daemon: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "daemon",
        abstract: "Run the agent in the foreground.",
        discussion: """
            Serves tokens on the socket until SIGTERM/SIGINT (or `rc-agent stop`); SIGHUP re-reads the config and builds the HTTP clients of profiles whose CA bundle changed. \
            Under systemd it takes the socket from socket activation and reports readiness (Type=notify).
            """)

    @OptionGroup var global: GlobalOptions

    @OptionGroup var socketOption: SocketOption

    @Option(name: .long, help: "Log level: trace, debug, info, notice, warning, error (default: $RC_AGENT_LOG, then info).")
    var logLevel: String?

    @Option(name: .customLong("allow-uid"), help: "Also serve this uid (repeatable). Only your own uid is served by default, root included.")
    var allowUID: [UInt32] = []

    @Option(name: .customLong("log-file"), help: ArgumentHelp(
        "Append the log (standard error) to this file, rotated to FILE.1 when it grows past --log-max-bytes.",
        valueName: "file"))
    var logFile: String?

    @Option(name: .customLong("log-max-bytes"), help: "Size at which --log-file is rotated (default 1048576).")
    var logMaxBytes: Int = AgentLogFile.defaultMaximumBytes

    func validate() throws {
        guard logMaxBytes >= 1024 else { throw ValidationError("--log-max-bytes must be at least 1024") }
    }

    func run() async throws {
        try await runReportingErrors {
            let settings = try global.settings()
            let file = try logFile.map { try AgentLogFile(path: $0, maximumBytes: logMaxBytes) }
            let logger = try AgentLogging.bootstrap(level: logLevel, environment: settings.environment, logFile: file)
            var limits = AgentServerLimits()
            limits.maximumProxyBodyBytes = settings.proxyMaxBody
            let options = AgentDaemonOptions(
                socketPath: socketOption.socketPath,
                inheritedDescriptor: Systemd.takeListenDescriptor(), extraAllowedUIDs: Set(allowUID), limits: limits)
            try await AgentDaemon.run(options: options, runtime: LiveEnvironment(settings).agentRuntime(), logger: logger)
            return .ok
        }
    }
}
