import CLibSecret
import Foundation

/// Looks at the private test keyring the way a user would, with secret-tool.
package enum TestKeyring {
    /// `secret-tool search --all service rc-agent profile PROFILE`: the attribute lines, secret lines removed.
    package static func attributes(profile: String, environment: [String: String]) async throws -> [String: String] {
        let result = try await runProcess(
            "/usr/bin/secret-tool", ["search", "--all", "service", "rc-agent", "profile", profile],
            environment: environment)
        var attributes: [String: String] = [:]
        for line in (result.stdout + result.stderr).split(separator: "\n") where line.hasPrefix("attribute.") {
            let parts = line.dropFirst("attribute.".count).split(separator: "=", maxSplits: 1)
            guard parts.count == 2 else { continue }
            attributes[parts[0].trimmingCharacters(in: .whitespaces)] = parts[1].trimmingCharacters(in: .whitespaces)
        }
        return attributes
    }

    /// The stored secret, read with `secret-tool lookup` (the test's own value, compared, never printed).
    package static func secret(profile: String, environment: [String: String]) async throws -> String? {
        let result = try await runProcess(
            "/usr/bin/secret-tool", ["lookup", "service", "rc-agent", "profile", profile], environment: environment)
        return result.status == 0 ? result.stdout : nil
    }
}

/// Locks and unlocks gnome-keyring's default collection over D-Bus, in-process.
///
/// Lock: `org.freedesktop.Secret.Service.Lock` (what `dbus-send … Service.Lock
/// array:objpath:/org/freedesktop/secrets/aliases/default` does).
/// Unlock: the standard `Unlock` needs a prompt (no display here), and re-running
/// `gnome-keyring-daemon --unlock` starts a second daemon instead of unlocking the first. What
/// works is gnome-keyring's `org.gnome.keyring.InternalUnsupportedGuiltRiddenInterface.
/// UnlockWithMasterPassword` with the password sent through a "plain" session — and a session
/// belongs to the connection that opened it, so both calls must share one connection (gdbus or
/// dbus-send, one connection per call, cannot do it).
package enum KeyringControl {
    package struct DBusFailure: Error, CustomStringConvertible {
        package let description: String
    }

    package static func lockDefaultCollection() throws {
        try withSessionBus { bus in
            _ = try call(
                bus, "/org/freedesktop/secrets", "org.freedesktop.Secret.Service", "Lock",
                "([objectpath '/org/freedesktop/secrets/aliases/default'],)")
        }
    }

    /// Runs `body` with the default collection locked, and unlocks it afterwards whatever
    /// happened (an unlock prompt may have unlocked it already), so a failure here does not
    /// leave the keyring locked for the tests after it.
    package static func whileLocked<T>(_ body: () async throws -> T) async throws -> T {
        try lockDefaultCollection()
        do {
            let result = try await body()
            try unlockDefaultCollection()
            return result
        } catch {
            try? unlockDefaultCollection()
            throw error
        }
    }

    /// Kills the keyring daemon that owns `org.freedesktop.secrets` and waits until it is gone;
    /// the next call starts a new one (D-Bus activation), whose collections are locked.
    package static func killSecretService() throws {
        var pid: pid_t = 0
        try withSessionBus { bus in
            var error: UnsafeMutablePointer<GError>?
            guard
                let reply = g_dbus_connection_call_sync(
                    bus, "org.freedesktop.DBus", "/org/freedesktop/DBus", "org.freedesktop.DBus",
                    "GetConnectionUnixProcessID", g_variant_new_tuple([g_variant_new_string("org.freedesktop.secrets")], 1),
                    nil, G_DBUS_CALL_FLAGS_NONE, 10_000, nil, &error)
            else { throw failure(error) }
            defer { g_variant_unref(reply) }
            let child = g_variant_get_child_value(reply, 0)!
            defer { g_variant_unref(child) }
            pid = pid_t(g_variant_get_uint32(child))
        }
        guard pid > 0, kill(pid, SIGTERM) == 0 else { throw DBusFailure(description: "no keyring daemon to kill (pid \(pid))") }
        for _ in 0..<200 where kill(pid, 0) == 0 { usleep(20_000) }
    }

    package static func unlockDefaultCollection() throws {
        guard let password = ProcessInfo.processInfo.environment["RC_TEST_KEYRING_PASSWORD"] else { throw DBusFailure(description: "no test password") }
        try withSessionBus { bus in
            let session = try call(
                bus, "/org/freedesktop/secrets", "org.freedesktop.Secret.Service", "OpenSession", "('plain', <''>)",
                resultIndex: 1)
            let collection = try call(
                bus, "/org/freedesktop/secrets", "org.freedesktop.Secret.Service", "ReadAlias", "('default',)",
                resultIndex: 0)
            let bytes = password.utf8.map(String.init).joined(separator: ", ")
            _ = try call(
                bus, "/org/freedesktop/secrets", "org.gnome.keyring.InternalUnsupportedGuiltRiddenInterface",
                "UnlockWithMasterPassword",
                "(objectpath '\(collection)', (objectpath '\(session)', @ay [], @ay [\(bytes)], 'text/plain'))")
            _ = try call(
                bus, session, "org.freedesktop.Secret.Session", "Close", "()")
        }
    }

    private static func withSessionBus(_ body: (OpaquePointer) throws -> Void) throws {
        var error: UnsafeMutablePointer<GError>?
        guard let bus = g_bus_get_sync(G_BUS_TYPE_SESSION, nil, &error) else { throw failure(error) }
        defer { g_object_unref(UnsafeMutableRawPointer(bus)) }
        try body(bus)
    }

    /// Calls `method` with parameters in GVariant text format; returns the string (or object
    /// path) at `resultIndex` of the reply, if asked.
    private static func call(
        _ bus: OpaquePointer, _ path: String, _ interface: String, _ method: String,
        _ parameters: String, resultIndex: Int? = nil
    ) throws -> String {
        var error: UnsafeMutablePointer<GError>?
        guard let arguments = g_variant_parse(nil, parameters, nil, nil, &error) else { throw failure(error) }
        defer { g_variant_unref(arguments) }
        guard
            let reply = g_dbus_connection_call_sync(
                bus, "org.freedesktop.secrets", path, interface, method, arguments, nil,
                G_DBUS_CALL_FLAGS_NONE, 10_000, nil, &error)
        else { throw failure(error) }
        defer { g_variant_unref(reply) }
        guard let resultIndex else { return "" }
        let child = g_variant_get_child_value(reply, gsize(resultIndex))!
        defer { g_variant_unref(child) }
        return String(cString: g_variant_get_string(child, nil))
    }

    private static func failure(_ error: UnsafeMutablePointer<GError>?) -> DBusFailure {
        guard let error else { return DBusFailure(description: "D-Bus call failed") }
        defer { g_error_free(error) }
        return DBusFailure(description: String(cString: error.pointee.message))
    }
}
