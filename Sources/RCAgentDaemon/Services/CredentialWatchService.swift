import Logging
import RCAgentCore
import ServiceLifecycle

/// Notices when a profile's secret changes behind rc-agent's back — a delivered file rotated by
/// Vault Agent, a Kubernetes Secret, `systemd-creds` — and fetches a token with the new secret at
/// once, instead of serving the old secret's token until it expires. Only profiles the agent has
/// fetched for are watched, and only those whose store reports a
/// ``CredentialStore/fingerprint(profile:)``: the one the last fetch read is compared with the
/// current one. A secret the tenant rejects is not asked for again until it changes once more.
final class CredentialWatchService: Service {
    private let cache: TokenCache
    private let store: any CredentialStore
    private let interval: Duration
    private let logger: Logger

    init(cache: TokenCache, store: any CredentialStore, interval: Duration, logger: Logger) {
        self.cache = cache
        self.store = store
        self.interval = interval
        self.logger = logger
    }

    func run() async throws {
        try? await cancelWhenGracefulShutdown {
            while true {
                try await Task.sleep(for: self.interval)
                await self.check()
            }
        }
    }

    /// One pass over the profiles the cache holds.
    func check() async {
        for entry in await cache.status() where entry.state != .refreshing {
            // A fetch that found no file holds nil: a file appearing later is a change too.
            guard let current = await store.fingerprint(profile: entry.profile), current != entry.credentialFingerprint
            else { continue }
            logger.info(
                "the profile's secret changed; fetching a token with the new one", metadata: ["profile": "\(entry.profile)"])
            await cache.invalidate(profile: entry.profile)
            _ = try? await cache.token(profile: entry.profile)
        }
    }
}
