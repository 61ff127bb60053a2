/// The process exit statuses every command uses (README: "Exit codes").
public enum ExitStatus: Int32, Sendable, CaseIterable {
    case ok = 0
    /// Any error without a more specific status.
    case failure = 1
    /// No credentials stored for the profile.
    case notLoggedIn = 2
    /// The agent did not answer on its socket.
    case agentUnreachable = 3
    /// The tenant rejected the credentials (401 at the token endpoint).
    case credentialsRejected = 4
    /// The keyring is unavailable or locked.
    case keyringUnavailable = 5
    /// The tenant is unreachable, timed out or answered 5xx.
    case tenantUnreachable = 6
    /// The command line was wrong.
    case usage = 64
}

/// An error that knows what it means to a user: a typed code, a message, a hint.
///
/// Every failure rc-agent reports goes through this protocol: the CLI prints `message` and
/// `hint` and exits with the code's exit status; the socket API returns the code's name,
/// `message` and `hint` as JSON with the code's HTTP status. Neither ever contains a secret, a
/// Basic header or a token.
public protocol RCAgentError: Error, CustomStringConvertible, Sendable {
    /// The stable code (PROTOCOL.md lists them), which carries the exit and HTTP statuses.
    var code: ErrorCode { get }
    /// One or two sentences saying what went wrong.
    var message: String { get }
    /// What to do about it, or nil.
    var hint: String? { get }
}

extension RCAgentError {
    /// The exit status a CLI command ends with.
    public var exitStatus: ExitStatus { code.exitStatus }

    public var description: String {
        if let hint { return "\(message)\n  hint: \(hint)" }
        return message
    }
}

/// A usage or input error found before anything was sent or stored.
public struct UsageError: RCAgentError {
    public let message: String
    public let hint: String?
    public init(_ message: String, hint: String? = nil) {
        self.message = message
        self.hint = hint
    }
    public var code: ErrorCode { .badRequest }
}
