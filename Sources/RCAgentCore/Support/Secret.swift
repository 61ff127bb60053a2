/// A secret value (a Client Secret or an access token) whose printed forms are redacted.
///
/// `description`, `debugDescription` and reflection never show the value, so a `Secret`
/// that reaches a log line, an error message or `dump()` by accident leaks nothing.
/// Read the value only where it must leave the process: `reveal()`.
public struct Secret: Sendable, Hashable, CustomStringConvertible, CustomDebugStringConvertible,
    CustomReflectable
{
    private let value: String

    /// Wraps `value`.
    public init(_ value: String) { self.value = value }

    /// The value itself. Call sites are the places a secret leaves the process: grep for them.
    public func reveal() -> String { value }

    /// True when the value is the empty string.
    public var isEmpty: Bool { value.isEmpty }

    public var description: String { "<redacted>" }
    public var debugDescription: String { "Secret(<redacted>)" }
    public var customMirror: Mirror { Mirror(self, children: [:]) }
}
