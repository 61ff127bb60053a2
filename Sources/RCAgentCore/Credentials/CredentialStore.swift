import FoundationEssentials

/// One profile's credentials as kept in the keyring: the Client Secret is the item's secret,
/// everything else is an attribute (readable without unlocking the secret value).
public struct StoredCredential: Sendable, Equatable {
    /// Profile name (`[A-Za-z0-9._-]{1,64}`).
    public var profile: String
    /// Client ID (not secret, shown shortened in `status`).
    public var clientID: String
    /// Normalised tenant URL, e.g. `https://acme.logicgate.com`.
    public var url: String
    /// The Client Secret.
    public var secret: Secret
    /// When this secret value was first stored (rotation reminders build on it).
    public var created: Date
    /// When the keyring item was last written, if the store knows: tells a second store of the
    /// same values (a login again with the same secret) from no store at all. Not part of the
    /// credential's value, so not compared by `==`.
    public var storedAt: Date?

    public init(profile: String, clientID: String, url: String, secret: Secret, created: Date, storedAt: Date? = nil) {
        self.profile = profile
        self.clientID = clientID
        self.url = url
        self.secret = secret
        self.created = created
        self.storedAt = storedAt
    }

    public static func == (lhs: StoredCredential, rhs: StoredCredential) -> Bool {
        (lhs.profile, lhs.clientID, lhs.url, lhs.secret, lhs.created) == (rhs.profile, rhs.clientID, rhs.url, rhs.secret, rhs.created)
    }
}

/// Which stored credential this was, without its secret: the Client ID, URL, `created`, when the
/// item was written and a keyed hash of the secret (the key is per process, so it means nothing
/// outside it). Two fingerprints are equal only when nothing was stored in between.
public struct CredentialFingerprint: Hashable, Sendable {
    private let clientID: String
    private let url: String
    private let created: Date
    private let storedAt: Date?
    private let secretHash: Int

    public init(_ credential: StoredCredential) {
        clientID = credential.clientID
        url = credential.url
        created = credential.created
        storedAt = credential.storedAt
        var hasher = Hasher()
        hasher.combine(credential.secret.reveal())
        secretHash = hasher.finalize()
    }
}

/// The attributes of a stored item, without its secret (what a search returns).
public struct CredentialSummary: Sendable, Equatable, Codable {
    public var profile: String
    public var clientID: String
    public var url: String
    public var created: Date?
    /// True when the item's collection is locked (its secret cannot be read now).
    public var locked: Bool
    /// How many items the profile has: more than one means a save or rotation was interrupted
    /// after the new item was stored (the newest wins; ``CredentialStore/reconcile(profile:)`` cleans up).
    public var itemCount: Int

    public init(profile: String, clientID: String, url: String, created: Date?, locked: Bool, itemCount: Int = 1) {
        self.profile = profile
        self.clientID = clientID
        self.url = url
        self.created = created
        self.locked = locked
        self.itemCount = itemCount
    }
}

/// The I/O edge where credentials live: a store (`LibSecretStore`, `KeyctlStore`) or a read-only
/// source (`EnvironmentSource`, `SecretFileSource`), all in RCAgentLive; ``CredentialRouter`` picks
/// one per profile.
///
/// Every call is bounded by a timeout and runs off the cooperative thread pool. Errors are
/// ``KeyringError`` (stores), ``CredentialSourceError`` and ``ReadOnlyCredentialsError`` (sources).
/// The requirements after ``reconcile(profile:)`` have defaults that suit a single store.
public protocol CredentialStore: Sendable {
    /// The profile's credentials, or nil when no item exists.
    /// Throws ``KeyringError/locked`` when an item exists but its collection is locked.
    func load(profile: String) async throws -> StoredCredential?
    /// Stores `credential`, replacing the profile's item if there is one.
    func save(_ credential: StoredCredential) async throws
    /// Removes the profile's item; returns false when there was none.
    @discardableResult
    func delete(profile: String) async throws -> Bool
    /// Attributes of every rc-agent item (no secrets), sorted by profile.
    func list() async throws -> [CredentialSummary]
    /// Keeps only the newest item of `profile` (the one ``load(profile:)`` returns) and removes
    /// the others, which an interrupted save or rotation can leave behind. True when any was removed.
    @discardableResult
    func reconcile(profile: String) async throws -> Bool

    /// Where `profile`'s credentials come from. Default: `secret-service`.
    func backend(for profile: String) -> CredentialBackend
    /// Non-nil when `profile`'s credentials are read-only here (a source): why, and where to change them.
    func readOnly(profile: String) -> ReadOnlyCredentialsError?
    /// Each profile's state (no secrets). Default: one ``list()``.
    func states(profiles: [String]) async -> [String: CredentialState]
    /// A value that changes when `profile`'s secret changes behind rc-agent's back (a delivered
    /// file), so the agent fetches a new token at once; nil when only rc-agent changes it.
    func fingerprint(profile: String) async -> Int?
}

extension CredentialStore {
    public func backend(for profile: String) -> CredentialBackend { .secretService }

    public func readOnly(profile: String) -> ReadOnlyCredentialsError? { nil }

    public func fingerprint(profile: String) async -> Int? { nil }

    public func states(profiles: [String]) async -> [String: CredentialState] {
        let summaries: [CredentialSummary]
        do {
            summaries = try await list()
        } catch {
            let state: KeyringState = (error as? KeyringError) == .locked ? .locked : .unavailable
            let message = (error as? any RCAgentError).map(\.description) ?? "\(error)"
            return Dictionary(uniqueKeysWithValues: profiles.map {
                ($0, CredentialState(backend: backend(for: $0), keyring: state, error: message))
            })
        }
        return Dictionary(uniqueKeysWithValues: profiles.map { name in
            let item = summaries.first { $0.profile == name }
            let state: KeyringState = item.map { $0.locked ? .locked : .ok } ?? .missing
            return (name, CredentialState(backend: backend(for: name), keyring: state, summary: item))
        })
    }
}

/// Why a keyring call failed. Each case names its fix.
public enum KeyringError: RCAgentError, Equatable, Codable {
    /// No D-Bus session bus, or no Secret Service on it.
    case unavailable(detail: String)
    /// The kernel keyring cannot be used (no persistent keyrings, keyctl forbidden).
    case kernelUnavailable(detail: String)
    /// The collection holding the item is locked.
    case locked
    /// The keyring refused to store or delete (e.g. locked collection on write, permission).
    case writeRefused(detail: String)
    /// The call did not finish in time (typically an unlock prompt nobody answered).
    case timedOut(seconds: Double)
    /// Anything else libsecret reported.
    case failed(detail: String)
    /// The person cancelled the keyring's unlock prompt; nothing was changed.
    case unlockCancelled
    /// The keyring is locked and its unlock prompt cannot be shown: no display in this session, or
    /// no prompter on the desktop.
    case promptUnavailable(reason: String)
    /// The Secret Service has no default collection (no login keyring) to store into; creating
    /// one shows the desktop's new-password prompt, which only the unlock prompt may do.
    case noDefaultCollection

    public var code: ErrorCode {
        switch self {
        case .unavailable, .kernelUnavailable, .timedOut: return .keyringUnavailable
        case .locked, .promptUnavailable, .noDefaultCollection: return .keyringLocked
        case .unlockCancelled: return .keyringUnlockCancelled
        case .writeRefused: return .keyringWriteRefused
        case .failed: return .keyringError
        }
    }

    public var message: String {
        switch self {
        case .unavailable(let detail):
            return "the keyring (Secret Service) is not available: \(detail)"
        case .kernelUnavailable(let detail):
            return "the kernel keyring is not available: \(detail)"
        case .locked:
            return "the keyring is locked"
        case .writeRefused(let detail):
            return "the keyring refused to store the credentials: \(detail)"
        case .timedOut(let seconds):
            return "the keyring did not answer within \(Int(seconds)) s (an unlock prompt may be waiting)"
        case .failed(let detail):
            return "keyring error: \(detail)"
        case .unlockCancelled:
            return "the keyring is locked and the unlock was cancelled"
        case .promptUnavailable(let reason):
            return "the keyring is locked and its unlock prompt cannot be shown: \(reason)"
        case .noDefaultCollection:
            return "the keyring has no default (login) keyring to store the credentials in"
        }
    }

    public var hint: String? {
        switch self {
        case .unavailable:
            return KeyringError.headlessChoices
        case .kernelUnavailable:
            return "use the environment (RC_CLIENT_ID, RC_CLIENT_SECRET, RC_AGENT_URL) or a delivered file "
                + "(`client_secret_file`) instead; in a container, allow keyctl in its seccomp profile"
        case .locked:
            return "run the command from a terminal in your desktop session to get the unlock prompt, or unlock it "
                + "with your desktop's keyring (Seahorse)"
        case .unlockCancelled:
            return "nothing was changed; run the command again to get the prompt, or unlock it with Seahorse"
        case .promptUnavailable:
            return "on a machine without a desktop, use a headless backend: `rc-agent login --backend keyctl`, "
                + "the RC_CLIENT_ID and RC_CLIENT_SECRET environment variables, or `client_secret_file` in the config"
        case .writeRefused:
            return "unlock the keyring and check that its default collection exists, then try again"
        case .timedOut:
            return "answer the unlock prompt, or raise `keyring_timeout` in the config"
        case .noDefaultCollection:
            return "create and unlock a login keyring (Seahorse: File → New → Password Keyring, then Set as Default), "
                + "or run the command from a terminal in your desktop session to be asked for its password, "
                + "or use another backend: `rc-agent login --backend keyctl`"
        case .failed:
            return nil
        }
    }
}

extension KeyringError {
    /// What to do where there is no Secret Service (SSH, cron, CI, containers): rc-agent never
    /// picks another backend by itself.
    public static let headlessChoices =
        "without a desktop keyring, choose where the credentials live: `rc-agent login --backend keyctl` "
        + "(kernel keyring; survives logout, not a reboot), or the environment (RC_CLIENT_ID and "
        + "RC_CLIENT_SECRET, with RC_AGENT_URL), or a file your secrets manager delivers "
        + "(`client_secret_file = \"/run/secrets/rc\"` in the profile); in a desktop session, start the keyring "
        + "(e.g. `gnome-keyring-daemon --unlock --components=secrets`)"
}

/// The profile has no stored credentials.
public struct NotLoggedInError: RCAgentError {
    public let profile: String
    public init(profile: String) { self.profile = profile }
    public var code: ErrorCode { .notLoggedIn }
    public var message: String { "no credentials stored for profile '\(profile)'" }
    public var hint: String? { "run `rc-agent login --profile \(profile)`" }
}

/// The keyring item of a profile names another tenant than the profile's `url` in the config: its
/// secret goes to neither until the user says which one is right.
public struct StoredURLMismatch: RCAgentError {
    public let profile: String
    /// The URL stored with the credentials.
    public let stored: String
    /// The profile's `url` in the config.
    public let configured: String

    /// The mismatch between `credential` and the profile's `configured` URL; nil when they name the
    /// same tenant or the config names none.
    public init?(_ credential: StoredCredential, configured: String?) {
        guard let configured else { return nil }
        func normalised(_ url: String) -> String { (try? TenantURL(parsing: url).base) ?? url }
        guard normalised(credential.url) != normalised(configured) else { return nil }
        profile = credential.profile
        stored = credential.url
        self.configured = configured
    }

    public var code: ErrorCode { .urlMismatch }
    public var message: String {
        "the credentials stored for profile '\(profile)' are for \(stored), but the config names \(configured) "
            + "for it; the secret is sent to neither"
    }
    public var hint: String? {
        "to use \(configured), run `rc-agent login --profile \(profile) --url \(configured)`; to keep \(stored), "
            + "set url = \"\(stored)\" in [profiles.\(profile)] of the config"
    }
}
