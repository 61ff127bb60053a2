import FoundationEssentials
import Glibc
import Logging
import RCAgentCore
import ServiceLifecycle

/// `rc-agent daemon`: the token cache's background work and the socket server as services in a
/// `ServiceGroup`. SIGTERM/SIGINT (or `POST /v1/shutdown`) shut down gracefully within 2 s and
/// remove the socket; SIGHUP re-reads the config and clears backoff and `credentials_rejected`.
public enum AgentDaemon {
    /// Runs the agent until it is told to stop.
    public static func run(options: AgentDaemonOptions, runtime: AgentRuntime, logger: Logger) async throws {
        for failure in ProcessHardening.apply(.zeroForGood) {
            logger.warning("process hardening failed; tokens in memory are less protected", metadata: ["error": "\(failure)"])
        }
        signal(SIGPIPE, SIG_IGN)
        let agent = try Assembly(options: options, runtime: runtime, logger: logger)
        let group = ServiceGroup(configuration: agent.serviceGroupConfiguration())
        agent.trigger.set(group)
        let reload = ReloadSignal { await agent.reload() }
        defer { reload.cancel() }
        do {
            try await group.run()
        } catch {
            await runtime.connections.shutdown()
            throw error
        }
        await runtime.connections.shutdown()
    }

    /// The agent's parts, wired together from the options and the runtime's edges.
    struct Assembly: Sendable {
        let options: AgentDaemonOptions
        let runtime: AgentRuntime
        let logger: Logger
        let profiles: AgentProfiles
        let cache: TokenCache
        let trigger = ShutdownTrigger()
        let watch: SocketWatchService

        init(options: AgentDaemonOptions, runtime: AgentRuntime, logger: Logger) throws {
            self.options = options
            self.runtime = runtime
            self.logger = logger
            let connections = runtime.connections
            let profiles = try AgentProfiles(config: runtime.loadConfig, onLoad: { connections.update(config: $0) })
            self.profiles = profiles
            cache = TokenCache(
                store: runtime.store, connections: connections, clock: runtime.clock, policy: options.policy,
                configuredURL: { profiles.all[$0] ?? nil }, logger: logger.with(label: "rc-agent.cache"))
            watch = SocketWatchService(
                path: options.socketPath, interval: options.socketCheckInterval,
                logger: logger.with(label: "rc-agent.server"))
        }

        func serviceGroupConfiguration() -> ServiceGroupConfiguration {
            let profiles = profiles
            var configuration = ServiceGroupConfiguration(
                services: [
                    .init(service: server()),
                    // Returns only when the socket file is gone: then the whole agent shuts down.
                    .init(service: watch, successTerminationBehavior: .gracefullyShutdownGroup),
                    .init(
                        service: RemindersService(
                            reminders: reminders(), store: runtime.store, managed: { profiles.all[$0] != nil },
                            logger: logger),
                        successTerminationBehavior: .ignore),
                    .init(
                        service: CredentialWatchService(
                            cache: cache, store: runtime.store, interval: options.credentialCheckInterval,
                            logger: logger.with(label: "rc-agent.cache")),
                        successTerminationBehavior: .ignore),
                    // Listed last so graceful shutdown reaches it first: STOPPING=1 goes out at once.
                    .init(service: BackgroundRefreshService(cache: cache)),
                ],
                gracefulShutdownSignals: [.sigterm, .sigint],
                logger: logger)
            configuration.maximumGracefulShutdownDuration = .seconds(2)
            configuration.maximumCancellationDuration = .milliseconds(500)
            return configuration
        }

        private func server() -> AgentSocketServer {
            let trigger = trigger
            var api = AgentAPI(
                cache: cache, profiles: profiles, store: runtime.store, clock: runtime.clock,
                socketPath: options.socketPath, requestShutdown: { await trigger.fire() },
                audit: logger.with(label: "rc-agent.audit"))
            api.connections = runtime.connections
            api.maximumProxyStreams = options.limits.maximumProxyStreamsPerProfile
            let (options, watch, logger) = (options, watch, logger)
            let allowed = options.extraAllowedUIDs.union([getuid()])
            let listener: AgentListener = options.inheritedDescriptor.map { .descriptor($0, path: options.socketPath) }
                ?? .path(options.socketPath)
            return AgentSocketServer(
                listener: listener, responder: api.router().buildResponder(), tokenFastPath: api.tokenFastPath(),
                limits: options.limits,
                allowedUIDs: { allowed },
                onListening: {
                    if options.inheritedDescriptor == nil { watch.arm() }
                    Systemd.notify("READY=1\nSTATUS=serving tokens on \(options.socketPath)")
                    logger.info("agent ready", metadata: ["socket": "\(options.socketPath)", "pid": "\(getpid())"])
                },
                memory: runtime.memory,
                logger: logger.with(label: "rc-agent.server"))
        }

        private func reminders() -> RotationReminders? {
            let profiles = profiles
            return runtime.reminders.map { setup in
                RotationReminders(
                    store: runtime.store, notifier: setup.notifier, clock: runtime.clock,
                    stateDirectory: setup.stateDirectory, logger: logger.with(label: "rc-agent.rotation"),
                    policy: { profiles.rotationPolicy(for: $0) }, managed: { profiles.all[$0] != nil })
            }
        }

        /// SIGHUP: the config again (and the HTTP clients whose settings changed), and no backoff
        /// or `credentials_rejected` latch.
        func reload() async {
            logger.info("SIGHUP: reloading the config")
            do {
                try profiles.reload()
            } catch {
                logger.error("reload failed, keeping the previous config: \(error)")
            }
            await cache.resetFailures()
        }
    }
}
