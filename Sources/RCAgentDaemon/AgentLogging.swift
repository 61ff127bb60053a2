import Logging
import RCAgentCore

extension Logger {
    /// A logger with another label and the same level.
    func with(label: String) -> Logger {
        var logger = Logger(label: label)
        logger.logLevel = logLevel
        return logger
    }
}

/// swift-log set up for rc-agent commands: everything to stderr.
public enum AgentLogging {
    /// Bootstraps logging to stderr once; `level` from `--log-level`, else `RC_AGENT_LOG`, else `info`.
    public static func bootstrap(level: String?, environment: [String: String]) throws -> Logger {
        let name = level ?? environment["RC_AGENT_LOG"] ?? "info"
        guard let parsed = Logger.Level(rawValue: name.lowercased()) else {
            throw UsageError(
                "unknown log level '\(name)'", hint: "use one of trace, debug, info, notice, warning, error, critical")
        }
        LoggingSystem.bootstrap { label in
            var handler = StreamLogHandler.standardError(label: label)
            handler.logLevel = parsed
            return handler
        }
        var logger = Logger(label: "rc-agent")
        logger.logLevel = parsed
        return logger
    }
}
