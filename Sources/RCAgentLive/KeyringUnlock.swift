import CLibSecret
import RCAgentCore

extension LibSecretStore: KeyringUnlocking {
    /// Unlocks the default collection and the locked rc-agent items of `profile` (all profiles
    /// when nil) through the Secret Service's `Unlock`, which shows the desktop's prompt; bounded
    /// by ``timeout`` like every other call.
    public func unlock(profile: String?) async throws {
        let timeout = timeout
        try await KeyringCall.run(timeout: timeout) { cancellable throws(KeyringError) in
            try KeyringUnlock(cancellable: cancellable, timeout: timeout).run(profile: profile)
        }
    }
}

/// One unlock on the keyring thread.
private struct KeyringUnlock {
    let cancellable: UnsafeMutablePointer<GCancellable>
    let timeout: Double

    /// gnome-keyring's name on the bus, and the names its prompter (gcr-prompter) takes.
    private static let gnomeKeyring = "org.gnome.keyring"
    private static let prompters = ["org.gnome.keyring.SystemPrompter", "org.gnome.keyring.PrivatePrompter"]

    func run(profile: String?) throws(KeyringError) {
        var error: UnsafeMutablePointer<GError>?
        guard let service = secret_service_get_sync(SECRET_SERVICE_NONE, cancellable, &error) else {
            throw failure(error, in: .connect)
        }
        defer { g_object_unref(service) }

        var paths = try lockedItemPaths(service, profile: profile)
        // The default collection too: a first login has no item yet, but storing one needs it open.
        if let alias = secret_service_read_alias_dbus_path_sync(service, "default", cancellable, &error) {
            paths.append(String(cString: alias))
            g_free(alias)
        } else if let error {
            throw failure(error, in: .read)
        } else {
            // No login keyring yet: creating it asks the person for its password (the desktop's prompt).
            guard let created = secret_collection_create_sync(
                service, "Login", "default", SECRET_COLLECTION_CREATE_NONE, cancellable, &error)
            else { throw failure(error, in: .write) }
            g_object_unref(created)
        }
        guard !paths.isEmpty else { return }

        let copies = paths.map { UnsafePointer<gchar>(strdup($0)) }
        defer { for copy in copies { free(UnsafeMutablePointer(mutating: copy)) } }
        var arguments: [UnsafePointer<gchar>?] = copies + [nil]
        var unlocked: UnsafeMutablePointer<UnsafeMutablePointer<gchar>?>?
        let count = arguments.withUnsafeMutableBufferPointer { buffer in
            secret_service_unlock_dbus_paths_sync(service, buffer.baseAddress, cancellable, &unlocked, &error)
        }
        g_strfreev(unlocked)
        if let error { throw failure(error, in: .read) }
        guard count <= 0 else { return }
        // Nothing unlocked and no error: the prompt was dismissed. gnome-keyring reports a
        // prompter that could not start (no display, gcr-prompter missing) the same way as a
        // Cancel; after a real prompt its prompter is still on the bus.
        if rc_bus_name_has_owner(Self.gnomeKeyring, 2_000) == 1,
            !Self.prompters.contains(where: { rc_bus_name_has_owner($0, 2_000) == 1 })
        {
            throw .promptUnavailable(reason: "the keyring could not show its prompt (no prompter on this display)")
        }
        throw .unlockCancelled
    }

    /// The D-Bus paths of the locked rc-agent items (of `profile`, or of every profile).
    private func lockedItemPaths(
        _ service: UnsafeMutablePointer<SecretService>, profile: String?
    ) throws(KeyringError) -> [String] {
        let table = rc_attributes_new()!
        defer { g_hash_table_unref(table) }
        rc_attributes_set(table, KeyringAttribute.service, KeyringAttribute.serviceName)
        if let profile { rc_attributes_set(table, KeyringAttribute.profile, profile) }
        var error: UnsafeMutablePointer<GError>?
        var lockedPaths: UnsafeMutablePointer<UnsafeMutablePointer<gchar>?>?
        if secret_service_search_for_dbus_paths_sync(
            service, rc_secret_schema(), table, cancellable, nil, &lockedPaths, &error) == 0
        {
            throw failure(error, in: .read)
        }
        defer { g_strfreev(lockedPaths) }
        var paths: [String] = []
        var index = 0
        while let path = lockedPaths?[index] {
            paths.append(String(cString: path))
            index += 1
        }
        return paths
    }

    private func failure(_ error: UnsafeMutablePointer<GError>?, in stage: KeyringFailure.Stage) -> KeyringError {
        guard let error else {
            return stage == .connect
                ? .unavailable(detail: "libsecret could not connect to the Secret Service")
                : .failed(detail: "libsecret reported a failure without details")
        }
        return KeyringFailure(consuming: error).keyringError(in: stage, timeout: timeout)
    }
}
