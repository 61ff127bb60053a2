/// A stable error code: the name on the wire (PROTOCOL.md, "Errors"), the exit status a command
/// ends with, and the HTTP status the agent answers with. Mapping an error is a field read.
///
/// The tenant's diagnoses and the agent's own errors share some names (`forbidden`,
/// `bad_request`, `not_found`); they are different codes here, told apart on the wire by the
/// HTTP status (`502`/`504` relay the tenant): see ``received(name:httpStatus:)``.
public struct ErrorCode: Sendable, Hashable, CustomStringConvertible {
    /// The code as the socket API and `--json` outputs spell it, e.g. `keyring_locked`.
    public let name: String
    /// What a command exits with when it fails with this code.
    public let exitStatus: ExitStatus
    /// What the agent answers with when a request fails with this code.
    public let httpStatus: Int
    /// The exit status of a client that got this code relayed by the agent (`502`/`504`).
    let relayedExitStatus: ExitStatus

    init(_ name: String, exit: ExitStatus, http: Int, whenRelayed: ExitStatus? = nil) {
        self.name = name
        self.exitStatus = exit
        self.httpStatus = http
        self.relayedExitStatus = whenRelayed ?? exit
    }

    public var description: String { name }

    /// The same code answered with another HTTP status (a parser's 413 or 431, say).
    public func answered(with httpStatus: Int) -> ErrorCode {
        ErrorCode(name, exit: exitStatus, http: httpStatus, whenRelayed: relayedExitStatus)
    }

    // MARK: The agent's own

    /// A malformed request or command line.
    public static let badRequest = ErrorCode("bad_request", exit: .usage, http: 400)
    /// The peer runs as another user.
    public static let forbidden = ErrorCode("forbidden", exit: .agentUnreachable, http: 403)
    /// No profile of that name in the config file.
    public static let unknownProfile = ErrorCode("unknown_profile", exit: .notLoggedIn, http: 404)
    /// The profile has no stored credentials.
    public static let notLoggedIn = ErrorCode("not_logged_in", exit: .notLoggedIn, http: 404)
    /// The stored credentials are for another tenant URL than the one in use (the profile's config,
    /// or `RC_AGENT_URL`): nothing is sent; the fix is `rc-agent login --url`.
    public static let urlMismatch = ErrorCode("url_mismatch", exit: .notLoggedIn, http: 409)
    /// No such route.
    public static let notFound = ErrorCode("not_found", exit: .failure, http: 404)
    /// A request body over the limit.
    public static let requestTooLarge = ErrorCode("request_too_large", exit: .failure, http: 413)
    /// Request headers over the limit.
    public static let headersTooLarge = ErrorCode("headers_too_large", exit: .failure, http: 431)
    /// The connection limit is reached.
    public static let tooManyConnections = ErrorCode("too_many_connections", exit: .failure, http: 503)
    /// The agent has no HTTP client for the proxy.
    public static let proxyUnavailable = ErrorCode("proxy_unavailable", exit: .failure, http: 503)
    /// The profile has as many proxied requests in progress as the agent allows.
    public static let proxyBusy = ErrorCode("proxy_busy", exit: .failure, http: 503)
    /// The profile was invalidated again and again while a request waited.
    public static let agentBusy = ErrorCode("agent_busy", exit: .failure, http: 500)
    /// A bug.
    public static let internalError = ErrorCode("internal_error", exit: .failure, http: 500)

    // MARK: Keyring

    /// No Secret Service, or it did not answer in time.
    public static let keyringUnavailable = ErrorCode("keyring_unavailable", exit: .keyringUnavailable, http: 503)
    /// The collection holding the item is locked.
    public static let keyringLocked = ErrorCode("keyring_locked", exit: .keyringUnavailable, http: 503)
    /// The person cancelled the keyring's unlock prompt (client side: the agent never prompts).
    public static let keyringUnlockCancelled = ErrorCode(
        "keyring_unlock_cancelled", exit: .keyringUnavailable, http: 503)
    /// The keyring refused a write.
    public static let keyringWriteRefused = ErrorCode("keyring_write_refused", exit: .keyringUnavailable, http: 503)
    /// Anything else the keyring reported.
    public static let keyringError = ErrorCode("keyring_error", exit: .keyringUnavailable, http: 503)

    // MARK: Credential sources (`env`, `file`)

    /// A source's credentials cannot be read: a variable missing, the file unreadable.
    public static let credentialsUnavailable = ErrorCode(
        "credentials_unavailable", exit: .keyringUnavailable, http: 503)
    /// `login`, `rotate` or `logout` on a source: the secret changes where it comes from.
    public static let readOnlyCredentials = ErrorCode("read_only_credentials", exit: .usage, http: 409)

    // MARK: Local files and settings

    /// The config file cannot be read or is invalid.
    public static let configError = ErrorCode("config_error", exit: .failure, http: 500)
    /// A private file cannot be written.
    public static let fileError = ErrorCode("file_error", exit: .failure, http: 500)
    /// A tenant URL that cannot be used.
    public static let badURL = ErrorCode("bad_url", exit: .usage, http: 500)

    // MARK: Client side (never sent by the agent)

    /// Nothing answers on the socket.
    public static let agentUnreachable = ErrorCode("agent_unreachable", exit: .agentUnreachable, http: 500)
    /// The agent's answer is not understood.
    public static let badResponse = ErrorCode("bad_response", exit: .agentUnreachable, http: 500)
    /// The socket cannot be set up or reached.
    public static let socketError = ErrorCode("socket_error", exit: .agentUnreachable, http: 500)
    /// The socket is another user's (its directory, or the uid of the process listening): refused
    /// before anything is sent.
    public static let untrustedAgent = ErrorCode("untrusted_agent", exit: .agentUnreachable, http: 500)

    // MARK: The tenant's (RiskCloudError's diagnoses), relayed with 502/504

    /// 401 at the token endpoint.
    public static let credentialsRejected = ErrorCode("credentials_rejected", exit: .credentialsRejected, http: 502)
    /// 401 on a bearer call.
    public static let tokenRejected = ErrorCode("token_rejected", exit: .failure, http: 502)
    /// 400 from the tenant.
    public static let tenantBadRequest = ErrorCode("bad_request", exit: .failure, http: 502)
    /// 403 from the tenant.
    public static let tenantForbidden = ErrorCode("forbidden", exit: .failure, http: 502)
    /// 404 from the tenant.
    public static let tenantNotFound = ErrorCode("not_found", exit: .failure, http: 502)
    /// 429 from the tenant.
    public static let rateLimited = ErrorCode("rate_limited", exit: .failure, http: 502, whenRelayed: .tenantUnreachable)
    /// An answer that is not the Risk Cloud API's.
    public static let unexpectedResponse = ErrorCode(
        "unexpected_response", exit: .failure, http: 502, whenRelayed: .tenantUnreachable)
    /// DNS, refused, TLS, connection closed or 5xx.
    public static let tenantUnreachable = ErrorCode("tenant_unreachable", exit: .tenantUnreachable, http: 502)
    /// No answer in time.
    public static let tenantTimeout = ErrorCode("tenant_timeout", exit: .tenantUnreachable, http: 504)
    /// A local HTTP setting (CA bundle, proxy URL) cannot be used.
    public static let badSetting = ErrorCode("bad_config", exit: .failure, http: 502)
    /// A token request failed in a way no diagnosis covers.
    public static let tenantError = ErrorCode("tenant_error", exit: .tenantUnreachable, http: 502)

    private static let agentCodes: [ErrorCode] = [
        .badRequest, .forbidden, .unknownProfile, .notLoggedIn, .notFound, .requestTooLarge, .headersTooLarge,
        .tooManyConnections,
        .proxyUnavailable, .proxyBusy, .agentBusy, .internalError, .keyringUnavailable, .keyringLocked,
        .keyringWriteRefused, .keyringUnlockCancelled, .keyringError, .credentialsUnavailable, .readOnlyCredentials,
        .configError, .fileError, .badURL, .urlMismatch,
    ]
    private static let tenantCodes: [ErrorCode] = [
        .credentialsRejected, .tokenRejected, .tenantBadRequest, .tenantForbidden, .tenantNotFound, .rateLimited,
        .unexpectedResponse, .tenantUnreachable, .tenantTimeout, .badSetting, .tenantError,
    ]
    private static let agentByName = Dictionary(agentCodes.map { ($0.name, $0) }, uniquingKeysWith: { first, _ in first })
    private static let tenantByName = Dictionary(tenantCodes.map { ($0.name, $0) }, uniquingKeysWith: { first, _ in first })

    /// The code of an error document the agent answered with `httpStatus`: a `502`/`504` relays
    /// one of the tenant's codes, anything else is the agent's own. A name this version does not
    /// know keeps its name, with the exit status its HTTP status implies.
    public static func received(name: String, httpStatus: Int) -> ErrorCode {
        if httpStatus == 502 || httpStatus == 504 {
            let known = tenantByName[name]
            return ErrorCode(name, exit: known?.relayedExitStatus ?? .failure, http: httpStatus)
        }
        if let known = agentByName[name], known.httpStatus == httpStatus { return known }
        return ErrorCode(
            name, exit: agentByName[name]?.exitStatus ?? (httpStatus == 503 ? .keyringUnavailable : .failure),
            http: httpStatus)
    }
}
