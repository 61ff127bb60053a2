import ArgumentParser
import Foundation
import RCAgentClient
import RCAgentCore
import RCAgentDaemon
import RCAgentLive

/// `rc-agent daemon`: the agent in the foreground (what systemd and tests run).
struct Daemon: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
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

    func run() async throws {
        try await runReportingErrors {
            let settings = try global.settings()
            let logger = try AgentLogging.bootstrap(level: logLevel, environment: settings.environment)
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
