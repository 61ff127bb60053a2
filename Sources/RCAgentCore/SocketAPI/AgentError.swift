/// What a failed token request tells the retry logic in the token cache.
///
/// `RiskCloudError` conforms; test doubles conform directly. Errors that do not conform are
/// treated as retryable failures with no upstream status.
public protocol UpstreamFailure: Error {
    /// The HTTP status the tenant answered with, or nil when there was no answer.
    var upstreamStatus: Int? { get }
    /// False when retrying cannot help (e.g. a 404 from a wrong tenant URL).
    var isRetryable: Bool { get }
    /// Seconds the tenant asked us to wait (`Retry-After`), if it did.
    var retryAfterSeconds: Double? { get }
}

/// An error the agent itself reports: a bad request, an unknown profile, a refused peer, or —
/// on the client side — the agent not answering, or an error the agent sent back as JSON.
public struct AgentError: RCAgentError, Equatable {
    public let code: ErrorCode
    public let message: String
    public let hint: String?
    /// The tenant's HTTP status when the agent relayed a tenant failure (`upstream_status`).
    public let upstreamStatus: Int?

    public init(_ code: ErrorCode, message: String, hint: String? = nil, upstreamStatus: Int? = nil) {
        self.code = code
        self.message = message
        self.hint = hint
        self.upstreamStatus = upstreamStatus
    }

    /// The error document an agent answered with `httpStatus` (client side).
    public init(received document: ErrorInfo, httpStatus: Int) {
        self.init(
            .received(name: document.code, httpStatus: httpStatus), message: document.message, hint: document.hint,
            upstreamStatus: document.upstreamStatus)
    }

    /// The HTTP status the agent answers with (server side) or answered with (client side).
    public var httpStatus: Int { code.httpStatus }

    /// The request was malformed (400).
    public static func badRequest(_ message: String, hint: String? = nil) -> AgentError {
        AgentError(.badRequest, message: message, hint: hint)
    }

    /// No profile of that name in the config file (404).
    public static func unknownProfile(_ profile: String) -> AgentError {
        AgentError(
            .unknownProfile, message: "no profile '\(profile)' in the config file",
            hint: "run `rc-agent login --profile \(profile)`, or pick another with --profile / RC_PROFILE")
    }

    /// No such route (404).
    public static func notFound(_ path: String) -> AgentError {
        AgentError(.notFound, message: "no such endpoint: \(path)", hint: "see PROTOCOL.md")
    }

    /// The peer runs as another user (403).
    public static func forbidden(uid: UInt32) -> AgentError {
        AgentError(
            .forbidden, message: "the agent serves only its own user; uid \(uid) is not allowed",
            hint: "talk to the agent as the user who started it")
    }

    /// Nothing answered on the socket (client side; exit status 3).
    public static func unreachable(socket: String, detail: String) -> AgentError {
        AgentError(
            .agentUnreachable, message: "no agent answers on \(socket): \(detail)",
            hint: "start one with `eval \"$(rc-agent start)\"`, or check RC_AGENT_SOCK / --socket")
    }
}

/// A token request failed with an error that is not an ``RCAgentError`` (a bug in a fetcher, in theory).
public struct TokenFetchFailure: RCAgentError {
    public let detail: String
    public init(detail: String) { self.detail = detail }
    public var code: ErrorCode { .tenantError }
    public var message: String { "the token request failed: \(detail)" }
    public var hint: String? { "run `rc-agent doctor` for a step-by-step check" }
}
