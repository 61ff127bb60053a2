import RCAgentCore
import CLibSecret
import Dispatch
import FoundationEssentials
import Glibc

/// `org.freedesktop.Notifications` on the session bus, via GDBus (loaded with libsecret; no libsecret, no notification).
public struct FreedesktopNotifier: DesktopNotifier {
    public init() {}

    public func notify(summary: String, body: String) async -> Bool {
        guard (try? requireLibSecret()) != nil else { return false }
        // A blocking D-Bus round trip: keep it off the cooperative pool.
        return await withCheckedContinuation { continuation in
            DispatchQueue.global().async {
                var error: UnsafeMutablePointer<GError>?
                let result = rc_desktop_notify("rc-agent", summary, body, 5_000, &error)
                if let error { g_error_free(error) }
                continuation.resume(returning: result == 1)
            }
        }
    }
}
