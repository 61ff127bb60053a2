import FoundationEssentials

/// What `rc-agent login` was asked to store.
public struct LoginRequest: Sendable {
    public var profile: String
    public var tenant: TenantURL
    public var clientID: String
    public var secret: Secret
    /// Request a token before storing anything (`--no-verify` turns it off).
    public var verify: Bool
    /// `--backend`: written into the profile's config with its url (nil: the config is left as it says).
    public var backend: CredentialBackend?

    public init(
        profile: String, tenant: TenantURL, clientID: String, secret: Secret, verify: Bool,
        backend: CredentialBackend? = nil
    ) {
        self.profile = profile
        self.tenant = tenant
        self.clientID = clientID
        self.secret = secret
        self.verify = verify
        self.backend = backend
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
    /// The store the credentials went to.
    public var backend: CredentialBackend
    /// Notes from tidying the input (trimmed whitespace…).
    public var notes: [String]
    /// When `--backend` moved the profile to another store: what became of its credentials in the
    /// store it used before.
    public var previous: PreviousStoreCleanup? = nil
}

/// The profile's credentials in the store a `login --backend` moved it away from: removed (best
/// effort), so a secret is not left behind where no one looks any more.
public struct PreviousStoreCleanup: Sendable, Equatable {
    /// The store the profile used before.
    public var backend: CredentialBackend
    /// True when an item was there and is gone.
    public var removed: Bool
    /// Why it could not be removed (the store unreachable, locked…); nil when it was.
    public var error: String?
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
    let previous: (any CredentialStore)?

    /// - Parameter previous: the store the profile uses before this login (only consulted when
    ///   the request's `backend` differs from it: its item is then removed after the login).
    public init(
        store: any CredentialStore, tokens: any TokenFetching, clock: any AgentClock, configPath: String,
        previous: (any CredentialStore)? = nil
    ) {
        self.store = store
        self.tokens = tokens
        self.clock = clock
        self.configPath = configPath
        self.previous = previous
    }

    /// Throws ``ReadOnlyCredentialsError`` when `profile`'s credentials come from a source
    /// (before anyone is asked for a secret).
    public static func checkWritable(profile: String, store: any CredentialStore) throws {
        if let refusal = store.readOnly(profile: profile) { throw refusal }
    }

    public func login(_ request: LoginRequest) async throws -> LoginOutcome {
        let profile = try ProfileName.validated(request.profile)
        try Self.checkWritable(profile: profile, store: store)
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
        let config = try ConfigWriter(path: configPath).prepare(
            profile: profile, url: request.tenant.base, backend: request.backend)
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
        return LoginOutcome(
            credential: credential, token: token, replaced: existing != nil, backend: store.backend(for: profile),
            notes: input.notes, previous: await removeFromPrevious(profile: profile, now: request.backend))
    }

    /// The new store holds the credentials and the config points at it: the old store's item is
    /// now a copy of a secret nothing reads, so it goes (a failure is reported, not fatal).
    private func removeFromPrevious(profile: String, now backend: CredentialBackend?) async -> PreviousStoreCleanup? {
        guard let previous, let backend else { return nil }
        let old = previous.backend(for: profile)
        guard old != backend, old.isStore else { return nil }
        do {
            return PreviousStoreCleanup(backend: old, removed: try await previous.delete(profile: profile), error: nil)
        } catch {
            let message = (error as? any RCAgentError).map(\.description) ?? "\(error)"
            return PreviousStoreCleanup(backend: old, removed: false, error: message)
        }
    }
}
