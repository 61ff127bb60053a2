import RCAgentCore
import ServiceLifecycle

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
