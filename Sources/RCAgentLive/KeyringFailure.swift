import RCAgentCore
import CLibSecret

/// A GError from libsecret or GDBus, reduced to what deciding the ``KeyringError`` needs.
struct KeyringFailure: Sendable, Equatable {
    /// What kind of failure the GError domain and code say it is.
    enum Kind: Sendable, Equatable {
        /// The call's GCancellable was cancelled (timeout or task cancellation).
        case cancelled
        /// `SECRET_ERROR_IS_LOCKED`: the collection or item is locked.
        case locked
        /// `SECRET_ERROR_NO_SUCH_OBJECT`: e.g. there is no default collection.
        case noSuchObject
        /// No bus, or nothing owns `org.freedesktop.secrets` and it cannot be activated.
        case noService
        /// The service or bus refused the call.
        case accessDenied
        /// Anything else.
        case other
    }

    /// The stage a call failed in; the same GError means different things in each.
    enum Stage: Sendable {
        /// Connecting to the session bus and the Secret Service.
        case connect
        /// Searching or reading a secret.
        case read
        /// Storing or deleting an item.
        case write
    }

    var kind: Kind
    /// The GError's message (remote D-Bus error names stripped). libsecret never puts a secret
    /// value into an error message.
    var message: String

    init(kind: Kind, message: String) {
        self.kind = kind
        self.message = message
    }

    /// Classifies and frees `error`.
    init(consuming error: UnsafeMutablePointer<GError>) {
        defer { g_error_free(error) }
        g_dbus_error_strip_remote_error(error)
        let domain = error.pointee.domain
        let code = error.pointee.code
        message = error.pointee.message.map { String(cString: $0) } ?? "unknown error"
        if domain == rc_secret_error_domain() {
            switch code {
            case Int32(SECRET_ERROR_IS_LOCKED.rawValue): kind = .locked
            case Int32(SECRET_ERROR_NO_SUCH_OBJECT.rawValue): kind = .noSuchObject
            default: kind = .other
            }
        } else if domain == rc_io_error_domain() {
            switch UInt32(bitPattern: code) {
            case G_IO_ERROR_CANCELLED.rawValue: kind = .cancelled
            case G_IO_ERROR_NOT_FOUND.rawValue, G_IO_ERROR_CONNECTION_REFUSED.rawValue,
                G_IO_ERROR_CLOSED.rawValue, G_IO_ERROR_BROKEN_PIPE.rawValue:
                kind = .noService
            default: kind = .other
            }
        } else if domain == rc_dbus_error_domain() {
            switch UInt32(bitPattern: code) {
            case G_DBUS_ERROR_SERVICE_UNKNOWN.rawValue, G_DBUS_ERROR_NAME_HAS_NO_OWNER.rawValue,
                G_DBUS_ERROR_NO_SERVER.rawValue, G_DBUS_ERROR_DISCONNECTED.rawValue,
                G_DBUS_ERROR_BAD_ADDRESS.rawValue, G_DBUS_ERROR_NO_REPLY.rawValue,
                G_DBUS_ERROR_SPAWN_EXEC_FAILED.rawValue, G_DBUS_ERROR_SPAWN_CHILD_EXITED.rawValue,
                G_DBUS_ERROR_SPAWN_FAILED.rawValue, G_DBUS_ERROR_SPAWN_SERVICE_NOT_FOUND.rawValue:
                kind = .noService
            case G_DBUS_ERROR_ACCESS_DENIED.rawValue, G_DBUS_ERROR_AUTH_FAILED.rawValue:
                kind = .accessDenied
            // libsecret's "No such secret item at path": the item went away (another process
            // deleted it) between a search and the proxy for one of its results.
            case G_DBUS_ERROR_UNKNOWN_METHOD.rawValue, G_DBUS_ERROR_UNKNOWN_OBJECT.rawValue:
                kind = .noSuchObject
            default: kind = .other
            }
        } else {
            kind = .other
        }
    }

    /// The user-facing error for this failure in `stage`.
    ///
    /// A locked collection is ``KeyringError/locked`` for reads AND writes: the fix is the same
    /// (unlock), so `load` and `save` agree. ``KeyringError/writeRefused`` is for writes the
    /// keyring refuses for other reasons (no default collection, access denied).
    func keyringError(in stage: Stage, timeout: Double) -> KeyringError {
        if stage == .connect, kind != .cancelled { return .unavailable(detail: message) }
        switch kind {
        case .cancelled: return .timedOut(seconds: timeout)
        case .locked: return .locked
        case .noService: return .unavailable(detail: message)
        case .noSuchObject where stage == .write,
            .accessDenied where stage == .write:
            return .writeRefused(detail: message)
        case .noSuchObject, .accessDenied, .other: return .failed(detail: message)
        }
    }
}
