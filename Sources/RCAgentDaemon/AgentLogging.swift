import Logging
import RCAgentCore
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

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
    /// With `logFile`, stderr is that file and it is rotated as it grows.
    public static func bootstrap(level: String?, environment: [String: String], logFile: AgentLogFile? = nil) throws
        -> Logger
    {
        let name = level ?? environment["RC_AGENT_LOG"] ?? "info"
        guard let parsed = Logger.Level(rawValue: name.lowercased()) else {
            throw UsageError(
                "unknown log level '\(name)'", hint: "use one of trace, debug, info, notice, warning, error, critical")
        }
        LoggingSystem.bootstrap { label in
            var handler = StreamLogHandler.standardError(label: label)
            handler.logLevel = parsed
            guard let logFile else { return handler }
            return RotatingLogHandler(inner: handler, file: logFile)
        }
        var logger = Logger(label: "rc-agent")
        logger.logLevel = parsed
        return logger
    }
}

/// The agent's log file (`rc-agent daemon --log-file`): standard error is appended to it, and once
/// it is larger than ``maximumBytes`` it becomes `PATH.1` (replacing an older one) and a new file
/// is started. So the log never takes much more than twice ``maximumBytes``, however long the agent
/// runs, and anything written to stderr (a crash message too) lands in it.
public final class AgentLogFile: Sendable {
    /// The default size cap: 1 MiB.
    public static let defaultMaximumBytes = 1 << 20

    public let path: String
    public let maximumBytes: Int
    private let lock = Mutex(())

    /// Opens `path` (0600, appending) as standard error. Throws ``FileWriteError``.
    public init(path: String, maximumBytes: Int = AgentLogFile.defaultMaximumBytes) throws {
        self.path = path
        self.maximumBytes = maximumBytes
        try Self.openAsStandardError(path)
    }

    /// Starts a new file when the current one has grown past ``maximumBytes``.
    func rotateIfNeeded() {
        lock.withLock { _ in
            var info = stat()
            guard fstat(STDERR_FILENO, &info) == 0, Int(info.st_size) > maximumBytes else { return }
            // If the rename fails the same file is reopened: the log keeps working, uncapped.
            _ = rename(path, path + ".1")
            try? Self.openAsStandardError(path)
        }
    }

    private static func openAsStandardError(_ path: String) throws {
        let fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0o600)
        guard fd >= 0 else { throw FileWriteError(path: path, reason: String(cString: strerror(errno))) }
        defer { close(fd) }
        guard dup2(fd, STDERR_FILENO) >= 0 else {
            throw FileWriteError(path: path, reason: String(cString: strerror(errno)))
        }
    }
}

/// swift-log's stderr handler, followed by a size check of the log file after each line.
struct RotatingLogHandler: LogHandler {
    var inner: StreamLogHandler
    let file: AgentLogFile

    var logLevel: Logger.Level {
        get { inner.logLevel }
        set { inner.logLevel = newValue }
    }

    var metadata: Logger.Metadata {
        get { inner.metadata }
        set { inner.metadata = newValue }
    }

    var metadataProvider: Logger.MetadataProvider? {
        get { inner.metadataProvider }
        set { inner.metadataProvider = newValue }
    }

    subscript(metadataKey key: String) -> Logger.Metadata.Value? {
        get { inner[metadataKey: key] }
        set { inner[metadataKey: key] = newValue }
    }

    func log(event: LogEvent) {
        inner.log(event: event)
        file.rotateIfNeeded()
    }
}
