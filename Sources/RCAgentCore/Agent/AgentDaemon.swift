import Dispatch
import Foundation
import Logging
import ServiceLifecycle
import Synchronization

#if canImport(Glibc)
import Glibc
#endif

/// The I/O edges the daemon is built from. ``live(settings:)`` is the real set; tests pass doubles.
public struct AgentRuntime: Sendable {
    public var store: any CredentialStore
    public var fetcher: any TokenFetching
    public var clock: any AgentClock
    /// The config file (read at start, on reload, and on a miss).
    public var loadConfig: @Sendable () throws -> ConfigFile
    /// Releases what the edges hold (HTTP clients) once the daemon has stopped.
    public var shutdown: @Sendable () async -> Void
    /// Rotation reminders (log warnings and desktop notifications), when set: where to remember
    /// the last notification per profile, and how to notify.
    public var reminders: (stateDirectory: String, notifier: any DesktopNotifier)?
    /// The tenant's HTTP side for the proxy (`/v1/proxy/…`); nil: the proxy answers 503.
    public var proxyTransport: (any TenantStreaming)? = nil

    public init(
        store: any CredentialStore, fetcher: any TokenFetching, clock: any AgentClock = SystemClock(),
        loadConfig: @escaping @Sendable () throws -> ConfigFile,
        shutdown: @escaping @Sendable () async -> Void = {},
        reminders: (stateDirectory: String, notifier: any DesktopNotifier)? = nil
    ) {
        self.reminders = reminders
        self.store = store
        self.fetcher = fetcher
        self.clock = clock
        self.loadConfig = loadConfig
        self.shutdown = shutdown
    }

    /// The keyring, the tenant over HTTPS and the config file that `settings` name.
    public static func live(settings: Settings) throws -> AgentRuntime {
        let config = settings.config
        let configPath = settings.configPath
        let client = try RiskCloudClient(
            settings: HTTPSettings(caFile: config.defaults.caFile, environment: settings.environment))
        var runtime = AgentRuntime(
            store: LibSecretStore(timeout: settings.keyringTimeout), fetcher: client,
            loadConfig: { try ConfigFile.load(path: configPath) },
            shutdown: { try? await client.shutdown() },
            reminders: (settings.stateDirectory, FreedesktopNotifier()))
        runtime.proxyTransport = client
        return runtime
    }
}

/// How the daemon listens and whom it serves.
public struct AgentDaemonOptions: Sendable {
    /// Where the socket is (bound, or only reported when systemd passed one).
    public var socketPath: String
    /// A listening socket passed by systemd (``Systemd/takeListenDescriptor()``), used instead of binding.
    public var inheritedDescriptor: CInt?
    /// Peer uids served besides the daemon's own (root is refused unless listed here).
    public var extraAllowedUIDs: Set<UInt32>
    public var limits: AgentServerLimits
    public var policy: RefreshPolicy
    /// How often the daemon checks that its socket file is still the one it bound (``SocketWatchService``).
    public var socketCheckInterval: Duration = .seconds(5)

    public init(
        socketPath: String, inheritedDescriptor: CInt? = nil, extraAllowedUIDs: Set<UInt32> = [],
        limits: AgentServerLimits = AgentServerLimits(), policy: RefreshPolicy = RefreshPolicy()
    ) {
        self.socketPath = socketPath
        self.inheritedDescriptor = inheritedDescriptor
        self.extraAllowedUIDs = extraAllowedUIDs
        self.limits = limits
        self.policy = policy
    }
}

/// `rc-agent daemon`: the token cache's background work and the socket server as services in a
/// `ServiceGroup`. SIGTERM/SIGINT (or `POST /v1/shutdown`) shut down gracefully within 2 s and
/// remove the socket; SIGHUP re-reads the config and clears backoff and `credentials_rejected`.
public enum AgentDaemon {
    /// Runs the agent until it is told to stop.
    public static func run(options: AgentDaemonOptions, runtime: AgentRuntime, logger: Logger) async throws {
        ProcessHardening.apply()
        signal(SIGPIPE, SIG_IGN)
        let profiles = try AgentProfiles(config: runtime.loadConfig)
        let cache = TokenCache(
            store: runtime.store, fetcher: runtime.fetcher, clock: runtime.clock, policy: options.policy,
            logger: logger.with(label: "rc-agent.cache"))
        let trigger = ShutdownTrigger()
        var api = AgentAPI(
            cache: cache, profiles: profiles, store: runtime.store, clock: runtime.clock,
            socketPath: options.socketPath, requestShutdown: { await trigger.fire() },
            audit: logger.with(label: "rc-agent.audit"))
        api.proxyTransport = runtime.proxyTransport
        let watch = SocketWatchService(
            path: options.socketPath, interval: options.socketCheckInterval,
            logger: logger.with(label: "rc-agent.server"))
        let allowed = options.extraAllowedUIDs.union([getuid()])
        let listener: AgentListener = options.inheritedDescriptor.map { .descriptor($0, path: options.socketPath) }
            ?? .path(options.socketPath)
        let server = AgentSocketServer(
            listener: listener, responder: api.router().buildResponder(), limits: options.limits,
            allowedUIDs: { allowed },
            onListening: {
                if options.inheritedDescriptor == nil { watch.arm() }
                Systemd.notify("READY=1\nSTATUS=serving tokens on \(options.socketPath)")
                logger.info("agent ready", metadata: ["socket": "\(options.socketPath)", "pid": "\(getpid())"])
            },
            logger: logger.with(label: "rc-agent.server"))
        let background = BackgroundRefreshService(cache: cache)
        let reminders = runtime.reminders.map { setup in
            RotationReminders(
                store: runtime.store, notifier: setup.notifier, clock: runtime.clock,
                stateDirectory: setup.stateDirectory, logger: logger.with(label: "rc-agent.rotation"),
                policy: { profiles.rotationPolicy(for: $0) }, managed: { profiles.all[$0] != nil })
        }

        var configuration = ServiceGroupConfiguration(
            services: [
                .init(service: server),
                // Returns only when the socket file is gone: then the whole agent shuts down.
                .init(service: watch, successTerminationBehavior: .gracefullyShutdownGroup),
                .init(
                    service: RemindersService(
                        reminders: reminders, store: runtime.store, managed: { profiles.all[$0] != nil }, logger: logger),
                    successTerminationBehavior: .ignore),
                // Listed last so graceful shutdown reaches it first: STOPPING=1 goes out at once.
                .init(service: background),
            ],
            gracefulShutdownSignals: [.sigterm, .sigint],
            logger: logger)
        configuration.maximumGracefulShutdownDuration = .seconds(2)
        configuration.maximumCancellationDuration = .milliseconds(500)
        let group = ServiceGroup(configuration: configuration)
        trigger.set(group)

        let reload = ReloadSignal { [logger] in
            logger.info("SIGHUP: reloading the config")
            do {
                try profiles.reload()
            } catch {
                logger.error("reload failed, keeping the previous config: \(error)")
            }
            await cache.resetFailures()
        }
        defer { reload.cancel() }
        do {
            try await group.run()
        } catch {
            await runtime.shutdown()
            throw error
        }
        await runtime.shutdown()
    }
}

/// Rotation housekeeping: at start, finishes interrupted rotations; then reminders at start and
/// once a day, until shutdown. Nothing when reminders are not configured (test runtimes).
struct RemindersService: Service {
    let reminders: RotationReminders?
    let store: any CredentialStore
    let managed: @Sendable (String) -> Bool
    let logger: Logger

    func run() async throws {
        guard let reminders else { return }
        for profile in await RotationService.finishInterrupted(store: store, managed: managed) {
            logger.notice("finished an interrupted rotation: kept the newest secret", metadata: ["profile": "\(profile)"])
        }
        try? await cancelWhenGracefulShutdown { try await reminders.run() }
    }
}

/// Ends the daemon when its socket file is removed or replaced, as gpg-agent does: no client can
/// reach it any more (its runtime directory was deleted, another agent took the path), so it would
/// only live on unseen, holding tokens. Idle for a socket systemd passed (never armed).
final class SocketWatchService: Service {
    private let path: String
    private let interval: Duration
    private let logger: Logger
    private let bound = Mutex<(dev: UInt64, ino: UInt64)?>(nil)

    init(path: String, interval: Duration, logger: Logger) {
        self.path = path
        self.interval = interval
        self.logger = logger
    }

    /// Records the socket file this process has just bound.
    func arm() {
        let identity = AgentSocket.identity(path)
        bound.withLock { $0 = identity }
    }

    /// Returns when the file at the path is no longer the bound socket; ends quietly on shutdown.
    func run() async throws {
        try? await cancelWhenGracefulShutdown {
            while true {
                try await Task.sleep(for: self.interval)
                guard let expected = self.bound.withLock({ $0 }) else { continue }
                if let current = AgentSocket.identity(self.path), current == expected { continue }
                self.logger.warning(
                    "the socket file was removed or replaced; shutting down", metadata: ["socket": "\(self.path)"])
                return
            }
        }
        // A graceful shutdown cancelled the loop: returning then changes nothing.
    }
}

/// The token cache's background refresh as a service; announces STOPPING=1 on graceful shutdown.
struct BackgroundRefreshService: Service {
    let cache: TokenCache

    func run() async throws {
        await cache.startBackgroundRefresh()
        try? await gracefulShutdown()
        Systemd.notify("STOPPING=1")
        await cache.stopBackgroundRefresh()
    }
}

/// Lets a route ask the service group to shut down gracefully.
final class ShutdownTrigger: Sendable {
    private let group = Mutex<ServiceGroup?>(nil)

    func set(_ serviceGroup: ServiceGroup) { group.withLock { $0 = serviceGroup } }

    func fire() async {
        guard let serviceGroup = group.withLock({ $0 }) else { return }
        await serviceGroup.triggerGracefulShutdown()
    }
}

/// Runs `action` on every SIGHUP until cancelled.
final class ReloadSignal {
    private let source: any DispatchSourceSignal

    init(action: @escaping @Sendable () async -> Void) {
        signal(SIGHUP, SIG_IGN)
        source = DispatchSource.makeSignalSource(signal: SIGHUP, queue: .global())
        source.setEventHandler { Task { await action() } }
        source.resume()
    }

    func cancel() { source.cancel() }
}

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
