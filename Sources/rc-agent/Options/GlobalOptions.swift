import ArgumentParser
import FoundationEssentials
import RCAgentClient
import RCAgentCore
import RCAgentDaemon
import RCAgentLive

/// Options every command takes: which config file and which profile.
struct GlobalOptions: ParsableArguments {
    @Option(name: .long, help: "Config file (default: $RC_AGENT_CONFIG, then $XDG_CONFIG_HOME/rc-agent/config.toml).")
    var config: String?

    @Option(name: .long, help: "Profile name (default: $RC_PROFILE, then [defaults] profile in the config, then 'default').")
    var profile: String?

    /// The process environment with the flags applied, resolved once per command.
    func settings() throws -> Settings {
        try Settings(configFlag: config, profileFlag: profile, environment: ProcessInfo.processInfo.environment)
    }
}

/// Runs a command body and turns an ``RCAgentError`` into its message on stderr and its exit status.
/// The process is hardened first: every command may hold a secret or a token.
func runReportingErrors(_ body: () async throws -> ExitStatus) async throws {
    hardenProcess()
    let status: ExitStatus
    do {
        status = try await body()
    } catch let error as RCAgentError {
        throw ExitCode(report(error))
    }
    if status != .ok { throw ExitCode(status.rawValue) }
}

/// Writes `error` to stderr as every command does; the exit status it carries.
func report(_ error: any RCAgentError) -> Int32 {
    Terminal.standardError.write("rc-agent: \(error)\n")
    return error.exitStatus.rawValue
}

/// No core dumps and not dumpable, before any secret or token is read (``ProcessHardening``). A
/// step that fails is a warning: the command still does its job.
func hardenProcess() { _ = processHardened }

/// Once per process: `token` may harden before its command runs (``TokenShortcut``), and the limit
/// saved for `exec` must be the user's, not the zero set the first time.
private let processHardened: Void = {
    for failure in ProcessHardening.apply(.zeroUntilExec) {
        Terminal.standardError.write("rc-agent: warning: process hardening failed: \(failure)\n")
    }
}()
