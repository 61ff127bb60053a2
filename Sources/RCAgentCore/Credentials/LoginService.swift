import Foundation

/// What `rc-agent login` was asked to store.
public struct LoginRequest: Sendable {
    public var profile: String
    public var tenant: TenantURL
    public var clientID: String
    public var secret: Secret
    /// Request a token before storing anything (`--no-verify` turns it off).
    public var verify: Bool

    public init(profile: String, tenant: TenantURL, clientID: String, secret: Secret, verify: Bool) {
        self.profile = profile
        self.tenant = tenant
        self.clientID = clientID
        self.secret = secret
        self.verify = verify
    }
}

/// What login did.
public struct LoginOutcome: Sendable {
    /// The stored item (its secret is the new one).
    public var credential: StoredCredential
    /// The token obtained while verifying, nil with `--no-verify`.
    public var token: AccessToken?
    /// True when an earlier item for the profile was replaced.
    public var replaced: Bool
    /// Notes from tidying the input (trimmed whitespace…).
    public var notes: [String]
}

/// `rc-agent login`: verify, then store, never losing working credentials on the way.
///
/// Order: read the existing item (a locked or missing keyring fails here, before anything changes)
/// → verify against the tenant → stage the config file → store the keyring item → commit the
/// config. A failure at any step leaves the earlier item and config as they were; if the very last
/// step fails, the earlier item is put back.
public struct LoginService: Sendable {
    let store: any CredentialStore
    let tokens: any TokenFetching
    let clock: any AgentClock
    let configPath: String

    public init(store: any CredentialStore, tokens: any TokenFetching, clock: any AgentClock, configPath: String) {
        self.store = store
        self.tokens = tokens
        self.clock = clock
        self.configPath = configPath
    }

    public func login(_ request: LoginRequest) async throws -> LoginOutcome {
        let profile = try ProfileName.validated(request.profile)
        let input = try CredentialInput.normalise(clientID: request.clientID, secret: request.secret)
        let existing = try await store.load(profile: profile)
        let token =
            request.verify
            ? try await tokens.fetchToken(tenant: request.tenant, clientID: input.clientID, secret: input.secret)
            : nil
        // Logging in again with the same secret keeps its age: rotation reminders count from `created`.
        let created = existing.flatMap { $0.secret == input.secret ? $0.created : nil } ?? clock.now()
        let credential = StoredCredential(
            profile: profile, clientID: input.clientID, url: request.tenant.base, secret: input.secret, created: created)
        let config = try ConfigWriter(path: configPath).prepare(profile: profile, url: request.tenant.base)
        do {
            try await store.save(credential)
        } catch {
            config.discard()
            throw error
        }
        do {
            try config.commit()
        } catch {
            if let existing { try? await store.save(existing) } else { try? await store.delete(profile: profile) }
            throw error
        }
        return LoginOutcome(credential: credential, token: token, replaced: existing != nil, notes: input.notes)
    }
}
