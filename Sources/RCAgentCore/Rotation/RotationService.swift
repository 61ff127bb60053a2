import FoundationEssentials

/// What `rc-agent rotate` did.
public struct RotationOutcome: Sendable {
    /// The credentials now stored (fresh `created`).
    public var credential: StoredCredential
    /// The token obtained while verifying the new secret.
    public var token: AccessToken
    /// The new secret's standing against the policy (age 0).
    public var rotation: RotationStatus
    /// Notes from tidying the input.
    public var notes: [String]
}

/// `rc-agent rotate`: replace a profile's secret with a new one, verified first.
///
/// Crash safety comes from the order and from the store: the new secret is verified against the
/// tenant before anything is written; ``CredentialStore/save(_:)`` writes the new item *before*
/// it removes the old one, and ``CredentialStore/load(profile:)`` prefers the newest item. So a
/// process that dies at any point leaves either the old item alone, or both (the new one wins and
/// ``CredentialStore/reconcile(profile:)`` — run by `rotate --resume` and by `status` — removes
/// the old), or the new one alone. A failed verification changes nothing.
public struct RotationService: Sendable {
    let store: any CredentialStore
    let tokens: any TokenFetching
    let clock: any AgentClock

    public init(store: any CredentialStore, tokens: any TokenFetching, clock: any AgentClock) {
        self.store = store
        self.tokens = tokens
        self.clock = clock
    }

    /// The credentials the rotation starts from. Throws ``NotLoggedInError`` when there are none,
    /// ``ReadOnlyCredentialsError`` when they come from a source (the secret changes there).
    public static func current(profile: String, store: any CredentialStore) async throws -> StoredCredential {
        if let refusal = store.readOnly(profile: profile) { throw refusal }
        guard let existing = try await store.load(profile: profile) else { throw NotLoggedInError(profile: profile) }
        return existing
    }

    /// Finishes an interrupted rotation: keeps the newest item of `profile`, removes the others.
    /// Returns true when something was cleaned up.
    public static func resume(profile: String, store: any CredentialStore) async throws -> Bool {
        try await store.reconcile(profile: profile)
    }

    /// Finishes the interrupted rotations of the profiles `managed` accepts (the agent does this
    /// for its config's profiles when it starts). Returns the profiles it cleaned up. Reads
    /// attributes only, never a secret.
    @discardableResult
    public static func finishInterrupted(store: any CredentialStore, managed: (String) -> Bool) async -> [String] {
        guard let summaries = try? await store.list() else { return [] }
        var cleaned: [String] = []
        for summary in summaries where summary.itemCount > 1 && managed(summary.profile) {
            if (try? await store.reconcile(profile: summary.profile)) == true { cleaned.append(summary.profile) }
        }
        return cleaned
    }

    /// Where a new secret comes from, in one sentence.
    public static let resetSecretStep =
        "To get a new Client Secret: in Risk Cloud, person icon → Profile → Access Key → Reset Secret Key."

    /// Verifies `newSecret` (with `newClientID`, or the stored id) at `tenant` and stores it.
    public func rotate(
        from existing: StoredCredential, tenant: TenantURL, newSecret: Secret, newClientID: String?,
        policy: RotationPolicy
    ) async throws -> RotationOutcome {
        let input = try CredentialInput.normalise(clientID: newClientID ?? existing.clientID, secret: newSecret)
        if input.secret == existing.secret && input.clientID == existing.clientID {
            throw RotationError.sameSecret(profile: existing.profile)
        }
        let token = try await tokens.fetchToken(tenant: tenant, clientID: input.clientID, secret: input.secret)
        let now = clock.now()
        let credential = StoredCredential(
            profile: existing.profile, clientID: input.clientID, url: tenant.base, secret: input.secret, created: now)
        try await store.save(credential)
        return RotationOutcome(
            credential: credential, token: token, rotation: policy.status(created: now, now: now), notes: input.notes)
    }
}

/// Rotation-specific refusals.
public enum RotationError: RCAgentError, Equatable {
    /// The "new" secret is the one already stored.
    case sameSecret(profile: String)

    public var code: ErrorCode { .badRequest }
    public var message: String {
        switch self {
        case .sameSecret(let profile):
            return "that is the secret already stored for profile '\(profile)'"
        }
    }
    public var hint: String? {
        "in Risk Cloud press Reset Secret Key (Profile → Access Key) to get a new one, then run `rc-agent rotate` again"
    }
}
