import Foundation

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
public struct CredentialSummary: Sendable, Equatable {
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

/// The keyring, the I/O edge where credentials live. `LibSecretStore` (RCAgentLive) is the real one.
///
/// Every call is bounded by a timeout and runs off the cooperative thread pool.
/// Errors are ``KeyringError``.
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
}

/// Why a keyring call failed. Each case names its fix.
public enum KeyringError: RCAgentError, Equatable {
    /// No D-Bus session bus, or no Secret Service on it.
    case unavailable(detail: String)
    /// The collection holding the item is locked.
    case locked
    /// The keyring refused to store or delete (e.g. locked collection on write, permission).
    case writeRefused(detail: String)
    /// The call did not finish in time (typically an unlock prompt nobody answered).
    case timedOut(seconds: Double)
    /// Anything else libsecret reported.
    case failed(detail: String)

    public var code: ErrorCode {
        switch self {
        case .unavailable, .timedOut: return .keyringUnavailable
        case .locked: return .keyringLocked
        case .writeRefused: return .keyringWriteRefused
        case .failed: return .keyringError
        }
    }

    public var message: String {
        switch self {
        case .unavailable(let detail):
            return "the keyring (Secret Service) is not available: \(detail)"
        case .locked:
            return "the keyring is locked"
        case .writeRefused(let detail):
            return "the keyring refused to store the credentials: \(detail)"
        case .timedOut(let seconds):
            return "the keyring did not answer within \(Int(seconds)) s (an unlock prompt may be waiting)"
        case .failed(let detail):
            return "keyring error: \(detail)"
        }
    }

    public var hint: String? {
        switch self {
        case .unavailable:
            return "run rc-agent inside a desktop session, or start a D-Bus session with a Secret Service "
                + "(e.g. `dbus-run-session` and `gnome-keyring-daemon --unlock --components=secrets`)"
        case .locked:
            return "unlock it with your desktop's keyring (Seahorse) or run `gnome-keyring-daemon --unlock`"
        case .writeRefused:
            return "unlock the keyring and check that its default collection exists, then try again"
        case .timedOut:
            return "answer the unlock prompt, or raise `keyring_timeout` in the config"
        case .failed:
            return nil
        }
    }
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
