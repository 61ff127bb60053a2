import RCAgentCore
import CLibSecret
import FoundationEssentials
import Glibc

/// The real ``CredentialStore``: the user's Secret Service keyring (gnome-keyring, KeePassXC, …)
/// through libsecret.
///
/// One item per profile in the default collection. Its secret is the Client Secret; its
/// attributes are `service` = `rc-agent`, `profile`, `client_id`, `url` and `created` (UNIX
/// seconds), and `xdg:schema` = `com.logicgate.rc-agent.Credentials` (libsecret adds it); its
/// label is `Risk Cloud credentials (PROFILE)`. So
/// `secret-tool search --all service rc-agent profile default` shows it.
///
/// Only items of that schema are read, replaced or removed: an item another program stored with
/// the same attributes (`secret-tool store … service rc-agent profile P` gets no schema or
/// `org.freedesktop.Secret.Generic`) is never sent to a tenant and never deleted.
///
/// Every call runs on a dedicated thread and is bounded by ``timeout``. Reads and writes never
/// unlock the keyring: a locked item is reported as ``KeyringError/locked``. Only
/// ``unlock(profile:)`` (``KeyringUnlocking``) shows the desktop's unlock prompt.
public struct LibSecretStore: CredentialStore {
    /// Seconds one keyring call may take before it throws ``KeyringError/timedOut(seconds:)``.
    /// Generous by default because the keyring may show an unlock prompt on a write.
    public let timeout: Double
    /// The environment that says where the session bus is.
    let environment: [String: String]

    /// A store talking to the session bus's Secret Service, each call bounded by `timeout` seconds.
    public init(timeout: Double = 30, environment: [String: String] = ProcessInfo.processInfo.environment) {
        self.timeout = timeout
        self.environment = environment
    }

    public func backend(for profile: String) -> CredentialBackend { .secretService }

    /// Why there is certainly no session bus (SSH, cron, CI, a system service), or nil when there
    /// may be one. Answering this without D-Bus makes such a command fail at once, not after a
    /// connection attempt (GLib would otherwise try X11 autolaunch).
    static func missingBus(_ environment: [String: String]) -> String? {
        if let address = environment["DBUS_SESSION_BUS_ADDRESS"], !address.isEmpty { return nil }
        if let runtime = environment["XDG_RUNTIME_DIR"], runtime.hasPrefix("/") {
            var info = stat()
            if stat(runtime + "/bus", &info) == 0, info.st_mode & S_IFMT == S_IFSOCK { return nil }
        }
        return "no D-Bus session bus (DBUS_SESSION_BUS_ADDRESS is not set and there is no $XDG_RUNTIME_DIR/bus)"
    }

    public func load(profile: String) async throws -> StoredCredential? {
        try await withSession { session throws(KeyringError) in try session.load(profile: profile) }
    }

    public func save(_ credential: StoredCredential) async throws {
        try await withSession { session throws(KeyringError) in try session.save(credential) }
    }

    @discardableResult
    public func delete(profile: String) async throws -> Bool {
        try await withSession { session throws(KeyringError) in try session.delete(profile: profile) }
    }

    public func list() async throws -> [CredentialSummary] {
        try await withSession { session throws(KeyringError) in try session.list() }
    }

    @discardableResult
    public func reconcile(profile: String) async throws -> Bool {
        try await withSession { session throws(KeyringError) in try session.reconcile(profile: profile) }
    }

    private func withSession<T: Sendable>(
        _ body: @escaping @Sendable (KeyringSession) throws(KeyringError) -> T
    ) async throws -> T {
        if let missing = Self.missingBus(environment) { throw KeyringError.unavailable(detail: missing) }
        let timeout = timeout
        return try await KeyringCall.run(timeout: timeout) { cancellable throws(KeyringError) in
            do throws(KeyringError) {
                return try body(KeyringSession(cancellable: cancellable, timeout: timeout))
            } catch {
                // libsecret keeps one SecretService per process, bound to the daemon's unique bus
                // name: after the keyring daemon restarts, every call failed ("The name :1.N was
                // not provided by any .service files") until the agent restarted. Dropping it
                // makes the next call connect to whichever daemon owns the name now.
                if case .unavailable = error { secret_service_disconnect() }
                throw error
            }
        }
    }
}

/// The attribute names of an rc-agent item.
enum KeyringAttribute {
    static let service = "service"
    static let profile = "profile"
    static let clientID = "client_id"
    static let url = "url"
    static let created = "created"
    /// Added by libsecret on every store: the schema's name.
    static let schema = "xdg:schema"
    /// The value of `service` on every rc-agent item.
    static let serviceName = "rc-agent"
}

/// A connection to the Secret Service for the duration of one ``KeyringCall``; lives only on
/// the keyring thread. The blocking libsecret calls happen here.
private final class KeyringSession {
    private let service: UnsafeMutablePointer<SecretService>
    private let cancellable: UnsafeMutablePointer<GCancellable>
    private let timeout: Double

    init(cancellable: UnsafeMutablePointer<GCancellable>, timeout: Double) throws(KeyringError) {
        self.cancellable = cancellable
        self.timeout = timeout
        var error: UnsafeMutablePointer<GError>?
        guard let service = secret_service_get_sync(SECRET_SERVICE_NONE, cancellable, &error) else {
            throw Self.keyringError(error, in: .connect, timeout: timeout)
        }
        self.service = service
    }

    deinit {
        g_object_unref(service)
    }

    func load(profile: String) throws(KeyringError) -> StoredCredential? {
        guard let item = newest(try items(profile: profile)) else { return nil }
        if item.locked { throw .locked }
        var error: UnsafeMutablePointer<GError>?
        if secret_item_load_secret_sync(item.pointer, cancellable, &error) == 0 {
            throw Self.keyringError(error, in: .read, timeout: timeout)
        }
        // A NULL secret after a successful load means the item got locked in between.
        guard let value = secret_item_get_secret(item.pointer) else { throw .locked }
        defer { secret_value_unref(UnsafeMutableRawPointer(value)) }  // wipes libsecret's copy
        var length: gsize = 0
        guard let bytes = secret_value_get(value, &length),
            let text = String(
                validating: UnsafeRawBufferPointer(start: bytes, count: Int(length)), as: UTF8.self)
        else {
            throw .failed(detail: "the stored secret for profile '\(profile)' is not UTF-8 text")
        }
        return StoredCredential(
            profile: profile, clientID: item[KeyringAttribute.clientID] ?? "",
            url: item[KeyringAttribute.url] ?? "", secret: Secret(text), created: item.createdDate,
            storedAt: Date(timeIntervalSince1970: Double(item.modified)))
    }

    func save(_ credential: StoredCredential) throws(KeyringError) {
        // libsecret's store unlocks a locked collection by itself, which shows the desktop's
        // prompt even for a script; only an UnlockPrompt may do that (a person at a terminal).
        if try defaultCollectionLocked() { throw .locked }
        let attributes = [
            KeyringAttribute.service: KeyringAttribute.serviceName,
            KeyringAttribute.profile: credential.profile,
            KeyringAttribute.clientID: credential.clientID,
            KeyringAttribute.url: credential.url,
            KeyringAttribute.created: String(Int64(credential.created.timeIntervalSince1970.rounded(.down))),
        ]
        let value = Self.secretValue(credential.secret)
        defer { secret_value_unref(UnsafeMutableRawPointer(value)) }
        let table = Self.attributeTable(attributes)
        defer { g_hash_table_unref(table) }
        var error: UnsafeMutablePointer<GError>?
        // An item with identical attributes is replaced in place; otherwise a new item is created.
        let stored = secret_service_store_sync(
            service, rc_secret_schema(), table, SECRET_COLLECTION_DEFAULT,
            "Risk Cloud credentials (\(credential.profile))", value, cancellable, &error)
        if stored == 0 { throw Self.keyringError(error, in: .write, timeout: timeout) }

        // Only now that the new secret is safely stored, remove the profile's older items (they
        // differ in client_id, url or created). If this cleanup fails the new item still wins:
        // load() and list() pick the newest item, and the next save() retries the cleanup.
        for item in (try? items(profile: credential.profile)) ?? [] where !item.attributes(matching: attributes) {
            _ = try? item.delete(cancellable: cancellable, timeout: timeout)
        }
    }

    /// True when the default collection exists and is locked.
    private func defaultCollectionLocked() throws(KeyringError) -> Bool {
        var error: UnsafeMutablePointer<GError>?
        guard let collection = secret_collection_for_alias_sync(service, "default", SECRET_COLLECTION_NONE, cancellable, &error)
        else {
            if let error { throw Self.keyringError(error, in: .write, timeout: timeout) }
            // The store would create one, with the desktop's new-password prompt: only an UnlockPrompt may.
            throw .noDefaultCollection
        }
        defer { g_object_unref(collection) }
        return secret_collection_get_locked(collection) != 0
    }

    func delete(profile: String) throws(KeyringError) -> Bool {
        let items = try items(profile: profile)
        for item in items { try item.delete(cancellable: cancellable, timeout: timeout) }
        return !items.isEmpty
    }

    func reconcile(profile: String) throws(KeyringError) -> Bool {
        let items = try items(profile: profile)
        guard let keep = newest(items) else { return false }
        let older = items.filter { $0.pointer != keep.pointer }
        for item in older { try item.delete(cancellable: cancellable, timeout: timeout) }
        return !older.isEmpty
    }

    func list() throws(KeyringError) -> [CredentialSummary] {
        let all = try own(search([KeyringAttribute.service: KeyringAttribute.serviceName]))
        let byProfile = Dictionary(grouping: all.filter { $0[KeyringAttribute.profile] != nil }) {
            $0[KeyringAttribute.profile] ?? ""
        }
        return byProfile.compactMap { profile, items in
            guard let item = newest(items) else { return nil }
            return CredentialSummary(
                profile: profile, clientID: item[KeyringAttribute.clientID] ?? "",
                url: item[KeyringAttribute.url] ?? "", created: item.createdDate, locked: item.locked,
                itemCount: items.count)
        }.sorted { $0.profile < $1.profile }
    }

    /// The profile's items of rc-agent's own schema (see ``LibSecretStore``).
    private func items(profile: String) throws(KeyringError) -> [KeyringItem] {
        try own(search([KeyringAttribute.service: KeyringAttribute.serviceName, KeyringAttribute.profile: profile]))
    }

    /// The items of rc-agent's schema among `items`; `locked` when one of them hides its
    /// attributes, which may be rc-agent's (so not "no item") or another program's (so never
    /// deleted or replaced): nothing can be told, read or changed until the keyring is unlocked.
    private func own(_ items: [KeyringItem]) throws(KeyringError) -> [KeyringItem] {
        if items.contains(where: \.hidesAttributes) { throw .locked }
        return items.filter(\.isOwn)
    }

    /// Every matching item, locked or not, without unlocking anything (so no prompt shows; a
    /// locked item still lists its attributes once its collection was unlocked since the keyring
    /// daemon started). Paths first, then one proxy per path: an item
    /// deleted in between (another process logging out) is skipped, where
    /// secret_service_search_sync would fail the whole search with "No such secret item".
    private func search(_ attributes: [String: String]) throws(KeyringError) -> [KeyringItem] {
        let table = Self.attributeTable(attributes)
        defer { g_hash_table_unref(table) }
        var error: UnsafeMutablePointer<GError>?
        var unlockedPaths: UnsafeMutablePointer<UnsafeMutablePointer<gchar>?>?
        var lockedPaths: UnsafeMutablePointer<UnsafeMutablePointer<gchar>?>?
        if secret_service_search_for_dbus_paths_sync(
            service, rc_secret_schema(), table, cancellable, &unlockedPaths, &lockedPaths, &error) == 0
        {
            throw Self.keyringError(error, in: .read, timeout: timeout)
        }
        defer {
            g_strfreev(unlockedPaths)
            g_strfreev(lockedPaths)
        }
        var items: [KeyringItem] = []
        for paths in [unlockedPaths, lockedPaths] {
            var index = 0
            while let path = paths?[index] {
                index += 1
                var itemError: UnsafeMutablePointer<GError>?
                guard let pointer = secret_item_new_for_dbus_path_sync(service, path, SECRET_ITEM_NONE, cancellable, &itemError)
                else {
                    guard let itemError else { throw Self.keyringError(nil, in: .read, timeout: timeout) }
                    let failure = KeyringFailure(consuming: itemError)
                    if failure.kind == .noSuchObject { continue }
                    throw failure.keyringError(in: .read, timeout: timeout)
                }
                items.append(KeyringItem(pointer))
                g_object_unref(pointer)
            }
        }
        return items
    }

    /// The most recently modified item: after an interrupted save, the one written last.
    private func newest(_ items: [KeyringItem]) -> KeyringItem? {
        items.max { ($0.modified, $0.createdDate) < ($1.modified, $1.createdDate) }
    }

    private static func attributeTable(_ attributes: [String: String]) -> OpaquePointer {
        let table = rc_attributes_new()!
        for (key, value) in attributes { rc_attributes_set(table, key, value) }
        return table
    }

    /// A SecretValue holding a wiped-on-free copy of the secret's UTF-8 bytes.
    private static func secretValue(_ secret: Secret) -> OpaquePointer {
        var text = secret.reveal()
        return text.withUTF8 { bytes in
            bytes.withMemoryRebound(to: CChar.self) { chars in
                guard let start = chars.baseAddress else { return rc_secret_value_new_text("", 0) }
                return rc_secret_value_new_text(start, gsize(chars.count))
            }
        }
    }

    static func keyringError(
        _ error: UnsafeMutablePointer<GError>?, in stage: KeyringFailure.Stage, timeout: Double
    ) -> KeyringError {
        guard let error else {
            return stage == .connect
                ? .unavailable(detail: "libsecret could not connect to the Secret Service")
                : .failed(detail: "libsecret reported a failure without details")
        }
        return KeyringFailure(consuming: error).keyringError(in: stage, timeout: timeout)
    }
}

/// One keyring item (a reference to its D-Bus proxy) and the attributes rc-agent reads.
private final class KeyringItem {
    let pointer: UnsafeMutablePointer<SecretItem>
    let locked: Bool
    /// Seconds since 1970 of the last change, as the keyring reports it.
    let modified: guint64
    private let itemCreated: guint64
    private let attributes: [String: String]

    init(_ pointer: UnsafeMutablePointer<SecretItem>) {
        g_object_ref(pointer)
        self.pointer = pointer
        locked = secret_item_get_locked(pointer) != 0
        modified = secret_item_get_modified(pointer)
        itemCreated = secret_item_get_created(pointer)
        var attributes: [String: String] = [:]
        if let table = secret_item_get_attributes(pointer) {
            for key in [
                KeyringAttribute.service, KeyringAttribute.profile, KeyringAttribute.clientID,
                KeyringAttribute.url, KeyringAttribute.created, KeyringAttribute.schema,
            ] {
                if let value = rc_attributes_get(table, key) { attributes[key] = String(cString: value) }
            }
            g_hash_table_unref(table)
        }
        self.attributes = attributes
    }

    deinit {
        g_object_unref(pointer)
    }

    subscript(name: String) -> String? { attributes[name] }

    /// True for an item rc-agent stored: its `xdg:schema` is rc-agent's.
    var isOwn: Bool { attributes[KeyringAttribute.schema] == Self.schemaName }

    /// A locked item whose attributes the keyring does not show (every search is by `service`):
    /// gnome-keyring hides them, all but a generic `xdg:schema`, until the collection is first
    /// unlocked after the daemon starts (a daemon restarted by D-Bus activation, a desktop that
    /// logged in without the keyring password).
    var hidesAttributes: Bool { locked && attributes[KeyringAttribute.service] == nil }

    static let schemaName = String(cString: rc_secret_schema().pointee.name)

    /// True when the item has exactly these values for these attributes.
    func attributes(matching expected: [String: String]) -> Bool {
        expected.allSatisfy { attributes[$0.key] == $0.value }
    }

    /// The `created` attribute, or the keyring's own creation time for items made by hand.
    var createdDate: Date {
        let seconds = attributes[KeyringAttribute.created].flatMap(Int64.init).map(Double.init)
        return Date(timeIntervalSince1970: seconds ?? Double(itemCreated))
    }

    func delete(cancellable: UnsafeMutablePointer<GCancellable>, timeout: Double) throws(KeyringError) {
        var error: UnsafeMutablePointer<GError>?
        if secret_item_delete_sync(pointer, cancellable, &error) == 0 {
            throw KeyringSession.keyringError(error, in: .write, timeout: timeout)
        }
    }
}

// The store holds the process environment (for the bus address): printed, it shows nothing of it.
extension LibSecretStore: CustomStringConvertible, CustomDebugStringConvertible {
    public var description: String { "LibSecretStore(timeout: \(timeout))" }
    public var debugDescription: String { description }
}
