import Foundation

/// What a failed token request tells the retry logic in ``TokenCache``.
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
    public let code: String
    public let message: String
    public let hint: String?
    /// The tenant's HTTP status when the agent relayed a tenant failure (`upstream_status`).
    public let upstreamStatus: Int?
    /// The HTTP status the agent answered with (client side) or should answer with (server side).
    public let httpStatus: Int?

    /// An error with `code`; its exit status follows from the code (see ``exitStatus``).
    public init(code: String, message: String, hint: String? = nil, upstreamStatus: Int? = nil, httpStatus: Int? = nil) {
        self.code = code
        self.message = message
        self.hint = hint
        self.upstreamStatus = upstreamStatus
        self.httpStatus = httpStatus
    }

    /// The request was malformed (400).
    public static func badRequest(_ message: String, hint: String? = nil) -> AgentError {
        AgentError(code: "bad_request", message: message, hint: hint, httpStatus: 400)
    }

    /// No profile of that name in the config file (404).
    public static func unknownProfile(_ profile: String) -> AgentError {
        AgentError(
            code: "unknown_profile", message: "no profile '\(profile)' in the config file",
            hint: "run `rc-agent login --profile \(profile)`, or pick another with --profile / RC_PROFILE",
            httpStatus: 404)
    }

    /// No such route (404).
    public static func notFound(_ path: String) -> AgentError {
        AgentError(code: "not_found", message: "no such endpoint: \(path)", hint: "see PROTOCOL.md", httpStatus: 404)
    }

    /// The peer runs as another user (403).
    public static func forbidden(uid: UInt32) -> AgentError {
        AgentError(
            code: "forbidden", message: "the agent serves only its own user; uid \(uid) is not allowed",
            hint: "talk to the agent as the user who started it", httpStatus: 403)
    }

    /// Nothing answered on the socket (client side; exit status 3).
    public static func unreachable(socket: String, detail: String) -> AgentError {
        AgentError(
            code: "agent_unreachable", message: "no agent answers on \(socket): \(detail)",
            hint: "start one with `eval \"$(rc-agent start)\"`, or check RC_AGENT_SOCK / --socket")
    }

    /// The exit status a CLI command ends with when it gets this error from the agent.
    public var exitStatus: ExitStatus {
        // 502/504 relay the tenant's failure; its codes overlap the agent's own (`forbidden`).
        if httpStatus == 502 || httpStatus == 504 {
            switch code {
            case "credentials_rejected": return .credentialsRejected
            case "rate_limited", "unexpected_response": return .tenantUnreachable
            case _ where code.hasPrefix("tenant_"): return .tenantUnreachable
            default: return .failure
            }
        }
        switch code {
        case "not_logged_in", "unknown_profile": return .notLoggedIn
        case "credentials_rejected": return .credentialsRejected
        case "agent_unreachable", "forbidden", "bad_response", "socket_error": return .agentUnreachable
        case "bad_request": return .usage
        case _ where code.hasPrefix("keyring_"): return .keyringUnavailable
        case _ where code.hasPrefix("tenant_"): return .tenantUnreachable
        default: return httpStatus == 503 ? .keyringUnavailable : .failure
        }
    }
}

/// A token request failed with an error that is not an ``RCAgentError`` (a bug in a fetcher, in theory).
struct TokenFetchFailure: RCAgentError {
    let detail: String
    var code: String { "tenant_error" }
    var message: String { "the token request failed: \(detail)" }
    var hint: String? { "run `rc-agent doctor` for a step-by-step check" }
    var exitStatus: ExitStatus { .tenantUnreachable }
}

extension AgentError {
    /// The HTTP status the agent answers with for `error` (PROTOCOL.md, "Errors").
    ///
    /// 400 bad request, 403 other uid, 404 unknown profile/route/no credentials, 502 the tenant
    /// failed or rejected us (with `upstream_status` when it answered), 503 keyring, 504 tenant
    /// timeout, 500 anything else.
    public static func httpStatus(for error: any RCAgentError) -> Int {
        if let agentError = error as? AgentError, let status = agentError.httpStatus { return status }
        let code = error.code
        if error is UpstreamFailure || error is TokenFetchFailure {
            return code.contains("timeout") ? 504 : 502
        }
        switch code {
        case "bad_request": return 400
        case "forbidden": return 403
        case "not_logged_in", "unknown_profile", "not_found": return 404
        default: break
        }
        if code.hasPrefix("keyring_") || error.exitStatus == .keyringUnavailable { return 503 }
        if error.exitStatus == .tenantUnreachable || error.exitStatus == .credentialsRejected { return 502 }
        return 500
    }
}
