import Foundation

/// The composition root's one source of real I/O edges: the keyring, the tenant, the clock.
/// Commands build what they need here; everything below takes protocols.
public enum LiveDependencies {
    /// The user's Secret Service keyring.
    public static func credentialStore(_ settings: Settings) -> any CredentialStore {
        LibSecretStore(timeout: settings.keyringTimeout)
    }

    /// Runs `body` with a token client for `profile`'s tenant settings, shutting it down afterwards.
    public static func withTokenClient<T: Sendable>(
        _ settings: Settings, profile: String, _ body: (any TokenFetching) async throws -> T
    ) async throws -> T {
        let http = HTTPSettings(caFile: settings.config.effective(profile: profile).caFile, environment: settings.environment)
        return try await RiskCloudClient.withClient(settings: http, clock: SystemClock()) { try await body($0) }
    }
}
