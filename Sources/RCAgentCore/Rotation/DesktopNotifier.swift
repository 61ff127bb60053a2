/// Desktop notifications, the I/O edge for rotation reminders on a desktop session.
/// `FreedesktopNotifier` (RCAgentLive) is the real one.
public protocol DesktopNotifier: Sendable {
    /// Shows a notification. Returns false when no notification service exists (servers, SSH
    /// sessions): that is not an error, the reminder simply goes elsewhere.
    func notify(summary: String, body: String) async -> Bool
}
