import FoundationEssentials
import Glibc

/// Every way a call to the tenant can fail, diagnosed as one of the vendor troubleshooting
/// guide's cases (shared/reference/risk-cloud-api-troubleshooting.txt) with its resolution steps.
///
/// This is the one diagnosis module: login, the token cache, `api`, the proxy and `doctor` all
/// build these with `RiskCloudClient` (RCAgentLive) or ``RiskCloudError/forResponse(status:headers:body:tenant:path:endpoint:now:redacting:)``.
/// Messages and hints never contain a secret, a Basic header or a token.
public struct RiskCloudError: RCAgentError, UpstreamFailure, Equatable {
    /// Which of the guide's (or the network's) cases this is.
    public enum Kind: Sendable, Equatable {
        /// 401 at the token endpoint: the Client ID/Secret were refused.
        case credentialsRejected
        /// 401 on a bearer call: the access token is wrong, expired or revoked.
        case tokenRejected
        /// 401 on a bearer call with a token the token endpoint had just issued: another token
        /// generated for the same Client ID replaced it, or a permission problem answered as 401.
        case freshTokenRejected
        /// 400: malformed request; `message` is the body's `message`, if any.
        case badRequest(message: String?)
        /// 403: authenticated, but not allowed; `message` is the body's `message`, if any.
        case forbidden(message: String?)
        /// 404: wrong tenant URL or path.
        case notFound
        /// 429, with the `Retry-After` delay in seconds when the tenant sent one.
        case rateLimited(retryAfter: Double?)
        /// 5xx, with a secret-free excerpt of the body.
        case serverError(status: Int, excerpt: String)
        /// Anything else: a body that is not the expected JSON, a redirect, an odd status.
        case unexpectedResponse(status: Int, excerpt: String)
        /// The tenant's host name does not resolve.
        case dnsFailure(host: String)
        /// Nothing listens at the tenant's address.
        case connectionRefused(host: String, port: Int)
        /// The connection was closed before a complete answer arrived.
        case connectionClosed
        /// The TLS handshake failed.
        case tls(TLSProblem, detail: String)
        /// No answer in time (`phase`: connect, read or the whole request).
        case timeout(phase: TimeoutPhase, seconds: Double)
        /// Another network failure (proxy refused, reset, …).
        case network(detail: String)
        /// A local setting (CA bundle, proxy URL) cannot be used.
        case badSetting(name: String, reason: String)
    }

    /// What went wrong in a TLS handshake, as far as NIOSSL tells.
    public enum TLSProblem: String, Sendable, Equatable {
        /// The certificate is not valid for the tenant's host name.
        case wrongHost
        /// The chain does not verify: an unknown CA (typical behind a TLS-inspecting proxy) or an
        /// expired / not yet valid certificate (BoringSSL does not say which).
        case untrusted
        /// Any other handshake failure.
        case handshake
    }

    /// Which timeout fired.
    public enum TimeoutPhase: String, Sendable, Equatable {
        case connect, read, request
    }

    /// Which kind of endpoint answered: the token endpoint (Basic auth) or a bearer-protected one.
    public enum Endpoint: Sendable, Equatable {
        case token
        case api
    }

    public let kind: Kind
    /// The tenant's base URL, e.g. `https://acme.logicgate.com`.
    public let tenant: String
    /// The request path (no query), e.g. `/api/v1/account/token`.
    public let path: String

    public init(_ kind: Kind, tenant: String, path: String) {
        self.kind = kind
        self.tenant = tenant
        self.path = path
    }

    public var code: ErrorCode {
        switch kind {
        case .credentialsRejected: return .credentialsRejected
        case .tokenRejected, .freshTokenRejected: return .tokenRejected
        case .badRequest: return .tenantBadRequest
        case .forbidden: return .tenantForbidden
        case .notFound: return .tenantNotFound
        case .rateLimited: return .rateLimited
        case .serverError, .dnsFailure, .connectionRefused, .connectionClosed, .tls, .network:
            return .tenantUnreachable
        case .timeout: return .tenantTimeout
        case .unexpectedResponse: return .unexpectedResponse
        case .badSetting: return .badSetting
        }
    }

    /// The HTTP status the tenant answered with, or nil when there was no HTTP answer.
    public var upstreamStatus: Int? {
        switch kind {
        case .credentialsRejected, .tokenRejected, .freshTokenRejected: return 401
        case .badRequest: return 400
        case .forbidden: return 403
        case .notFound: return 404
        case .rateLimited: return 429
        case .serverError(let status, _), .unexpectedResponse(let status, _): return status
        default: return nil
        }
    }

    /// True when the same request may succeed later without anyone changing anything.
    /// The caller (the token cache) owns retries and backoff.
    public var isRetryable: Bool {
        switch kind {
        case .rateLimited, .serverError, .dnsFailure, .connectionRefused, .connectionClosed, .timeout, .network,
            .tokenRejected:
            return true
        case .unexpectedResponse(let status, _):
            // A 200 maintenance page or a 5xx-like oddity may pass; a 3xx/4xx will not.
            return status < 300 || status >= 500
        case .credentialsRejected, .freshTokenRejected, .badRequest, .forbidden, .notFound, .tls, .badSetting:
            return false
        }
    }

    /// Seconds the tenant asked us to wait (`Retry-After` on a 429), if it did.
    public var retryAfter: Double? {
        if case .rateLimited(let seconds) = kind { return seconds }
        return nil
    }

    /// ``UpstreamFailure`` spelling of ``retryAfter``.
    public var retryAfterSeconds: Double? { retryAfter }

    private var host: String { URLComponents(string: tenant)?.host ?? tenant }

    /// True for the endpoints that need the "Build Access" permission (risk-cloud-api-facts.md).
    private var needsBuildAccess: Bool {
        ["/api/v2/applications", "/api/v2/workflows"].contains { path.hasPrefix($0) }
    }

    public var message: String {
        let at = "\(tenant)\(path)"
        switch kind {
        case .credentialsRejected:
            return "the tenant rejected the Client ID and Secret (401 Unauthorized at \(at)). "
                + "Guide case \"401 Unauthorized\": the credentials are missing, incorrect or improperly encoded, "
                + "the wrong type of authorization header was sent, or the secret was reset"
        case .tokenRejected:
            return "the tenant rejected the access token (401 Unauthorized at \(at)). "
                + "Guide case \"401 Unauthorized\": an incorrect or expired API access token "
                + "(a secret reset may also have revoked it)"
        case .freshTokenRejected:
            return "the tenant refused a token its token endpoint had just issued (401 Unauthorized at \(at)). "
                + "A token generated elsewhere for the same Client ID (the UI's Generate Access Key, Postman, "
                + "another script or integration) invalidates ours; and permission problems can come back as "
                + "401, as 403 or as an empty list, not only as 403"
        case .badRequest(let detail):
            return "the tenant refused the request as malformed (400 Bad Request at \(at))"
                + (detail.map { ": \($0)" } ?? "")
                + ". Guide case \"400 Bad Request\": improperly formatted JSON, missing required fields or bad parameters"
        case .forbidden(let detail):
            return "the tenant authenticated the request but denied access (403 Forbidden at \(at))"
                + (detail.map { ": \($0)" } ?? "")
                + ". Guide case \"403 Forbidden\": the user tied to these API credentials lacks permission for this resource"
                + (needsBuildAccess ? " (this endpoint needs Build Access)" : "")
        case .notFound:
            return "nothing found at \(at) (404 Not Found). "
                + "Guide case \"404 Not Found\": an incorrect tenant URL, endpoint or resource ID"
        case .rateLimited(let seconds):
            return "the tenant is limiting requests (429 Too Many Requests at \(at))"
                + (seconds.map { "; it asks to retry after \(Self.format($0)) s" } ?? "")
        case .serverError(let status, let excerpt):
            return "the tenant failed to answer (HTTP \(status) at \(at)): a problem on the tenant's side, not with "
                + "your credentials" + Self.excerptSuffix(excerpt)
        case .unexpectedResponse(let status, let excerpt):
            return "unexpected response from \(at): HTTP \(status) that is not the Risk Cloud API's answer"
                + Self.excerptSuffix(excerpt)
        case .dnsFailure(let host):
            return "cannot resolve the tenant's host name \(host) (DNS lookup failed)"
        case .connectionRefused(let host, let port):
            return "the connection to \(host):\(port) was refused: nothing is listening there"
        case .connectionClosed:
            return "the connection to \(tenant) was closed before the tenant answered"
        case .tls(let problem, let detail):
            switch problem {
            case .wrongHost:
                return "TLS: the certificate presented by \(host) is not valid for that name (wrong host)"
            case .untrusted:
                return "TLS: the certificate presented by \(host) could not be verified: it is issued by an "
                    + "unknown CA, or it has expired or is not yet valid"
            case .handshake:
                return "TLS handshake with \(host) failed: \(detail)"
            }
        case .timeout(let phase, let seconds):
            let what: String
            switch phase {
            case .connect: what = "connecting to"
            case .read: what = "waiting for an answer from"
            case .request: what = "the request to"
            }
            return "timed out after \(Self.format(seconds)) s \(what) \(at)"
        case .network(let detail):
            return "cannot reach \(tenant): \(detail)"
        case .badSetting(let name, let reason):
            return "cannot use \(name): \(reason)"
        }
    }

    public var hint: String? {
        switch kind {
        case .credentialsRejected:
            return "copy the Client ID and Secret again from Profile → Access Key (rc-agent sends them as "
                + "Basic base64(ID:SECRET), encoded once) and run `rc-agent login`; if they still fail, reset the "
                + "secret (Profile → Access Key → Reset Secret Key), then `rc-agent login`. No Access Key tab: "
                + "the user lacks API access; ask your Risk Cloud admin"
        case .tokenRejected:
            return "fetch a new token (rc-agent does this once by itself); if the new one is rejected too, reset "
                + "the secret (Profile → Access Key → Reset Secret Key), then `rc-agent login`"
        case .freshTokenRejected:
            return "find what else uses this Client ID and give each integration its own service account "
                + "(LogicGate's advice); check the user's roles and access to this resource with your Risk Cloud "
                + "admin and try it in the UI as that user; a script that holds a token takes a new one with "
                + "`rc-agent token --refresh`"
        case .badRequest:
            return "check the endpoint and payload against the API documentation and read the tenant's message "
                + "above (guide steps 2 and 3)"
        case .forbidden:
            return "verify the user's access to the application, workflow, step or records; check the user's roles "
                + "with your Risk Cloud admin; try the same thing in the Risk Cloud UI as that user — if it is "
                + "blocked there too, it is a permission issue"
        case .notFound:
            return "check the tenant URL (https://COMPANY.logicgate.com, as in your browser; fix it with "
                + "`rc-agent login --url …`) and the path or resource ID"
        case .rateLimited:
            return "wait and try again; rc-agent honours Retry-After"
        case .serverError:
            return "try again later; check Risk Cloud's status or maintenance notices if it persists"
        case .unexpectedResponse:
            return "check that the URL is your Risk Cloud tenant and not a login portal, proxy or maintenance page; "
                + "run `rc-agent doctor`"
        case .dnsFailure:
            return "check the tenant URL's spelling (https://COMPANY.logicgate.com) and your network or DNS; "
                + "behind a proxy set HTTPS_PROXY"
        case .connectionRefused:
            return "check the tenant URL and port; behind a proxy set HTTPS_PROXY (and NO_PROXY for exceptions)"
        case .connectionClosed, .network:
            return "try again; if it persists, check proxies and firewalls between you and the tenant "
                + "(HTTPS_PROXY / NO_PROXY)"
        case .tls(let problem, _):
            switch problem {
            case .wrongHost:
                return "use the tenant's own host name (https://COMPANY.logicgate.com); a proxy or captive portal "
                    + "may be intercepting the connection"
            case .untrusted, .handshake:
                return "check the system clock; behind a TLS-inspecting proxy add its CA bundle with "
                    + "SSL_CERT_FILE=/path/ca.pem or `ca_file` in the config"
            }
        case .timeout:
            return "check your network and proxy (HTTPS_PROXY / NO_PROXY); the tenant may be slow: try again"
        case .badSetting:
            return "fix the setting (SSL_CERT_FILE / `ca_file` must name a readable PEM bundle; HTTPS_PROXY must "
                + "look like http://HOST:PORT)"
        }
    }

    /// Doctor's warning when the token the tenant issued moments ago was refused and the next one
    /// worked: something else fetched a token for the same Client ID in between.
    public static let tokenReplacedElsewhere = (
        message: "the token the tenant issued moments ago was refused and a new one worked: a token generated "
            + "elsewhere for the same Client ID (the UI's Generate Access Key, Postman, another script or "
            + "integration) invalidates the one the agent holds",
        hint: "give each integration its own service account (LogicGate's advice); the agent's proxy and "
            + "`rc-agent api` recover by themselves, a script that holds a token runs `rc-agent token --refresh` "
            + "after a 401")

    /// Doctor's warning when a list endpoint answered with no items: the tenant leaves out what the
    /// user cannot see, so an empty list proves nothing about access.
    public static let emptyListNote = (
        message: "no records visible: list endpoints leave out records the user cannot see, so 0 records "
            + "may be a permission problem rather than an empty tenant",
        hint: "if the tenant has records, check the user's roles and application access with your Risk Cloud "
            + "admin, or look at the records in the UI as that user")

    /// What `logout` adds: the tenant has no revoke endpoint.
    public static let tokenOutlivesLogout =
        "a token already issued stays valid on the tenant until it expires or a new one is generated "
        + "(Risk Cloud has no revoke endpoint). To cut it off now: in Risk Cloud, Profile → Access Key → "
        + "Generate Access Key (the new token replaces the old one), and Reset Secret Key so the removed "
        + "secret cannot fetch another"

    private static func excerptSuffix(_ excerpt: String) -> String {
        excerpt.isEmpty ? " (empty body)" : "; body: \(excerpt)"
    }

    static func format(_ seconds: Double) -> String {
        seconds == seconds.rounded() ? String(Int(seconds)) : CFormat.oneDecimal(seconds)
    }
}

extension RiskCloudError {
    /// Diagnoses a non-success answer, or returns nil for a 2xx. Used by every path that talks to the tenant.
    ///
    /// - Parameters:
    ///   - endpoint: `.token` for `POST /api/v1/account/token` (a 401 means the credentials were
    ///     refused), `.api` for bearer calls (a 401 means the token was refused).
    ///   - now: the time to resolve an HTTP-date `Retry-After` against.
    ///   - redacting: values that must never appear in an excerpt (the secret, the token).
    public static func forResponse(
        status: Int, headers: [(name: String, value: String)], body: [UInt8], tenant: TenantURL, path: String,
        endpoint: Endpoint, now: Date, redacting: [String] = [], freshToken: Bool = false
    ) -> RiskCloudError? {
        func make(_ kind: Kind) -> RiskCloudError { RiskCloudError(kind, tenant: tenant.base, path: path) }
        func header(_ name: String) -> String? {
            headers.first { $0.name.equalsIgnoringASCIICase(name) }?.value
        }
        switch status {
        case 200..<300:
            return nil
        case 401:
            if endpoint == .token { return make(.credentialsRejected) }
            return make(freshToken ? .freshTokenRejected : .tokenRejected)
        case 400:
            return make(.badRequest(message: ResponseExcerpt.jsonMessage(body, redacting: redacting)))
        case 403:
            return make(.forbidden(message: ResponseExcerpt.jsonMessage(body, redacting: redacting)))
        case 404:
            return make(.notFound)
        case 429:
            return make(.rateLimited(retryAfter: header("Retry-After").flatMap { Self.retryAfter($0, now: now) }))
        case 500..<600:
            return make(.serverError(status: status, excerpt: ResponseExcerpt.make(body, redacting: redacting)))
        default:
            var excerpt = ResponseExcerpt.make(body, redacting: redacting)
            if (300..<400).contains(status), let location = header("Location") {
                excerpt = "redirect to " + ResponseExcerpt.clean(location, redacting: redacting)
            }
            return make(.unexpectedResponse(status: status, excerpt: excerpt))
        }
    }

    /// Parses `Retry-After`: delta-seconds or an HTTP-date (resolved against `now`).
    static func retryAfter(_ value: String, now: Date) -> Double? {
        let trimmed = value.trimmingBlanks()
        if let seconds = Double(trimmed), seconds >= 0 { return seconds }
        guard let date = httpDate(trimmed) else { return nil }
        return max(0, date.timeIntervalSince(now))
    }

    /// An RFC 9110 IMF-fixdate, `Sun, 06 Nov 1994 08:49:37 GMT`.
    static func httpDate(_ text: String) -> Date? {
        let months = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]
        let days = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"]
        let parts = text.split(separator: " ")
        guard parts.count == 6, parts[0].hasSuffix(","), days.contains(String(parts[0].dropLast())),
            let day = Int(parts[1]), (1...31).contains(day), let month = months.firstIndex(of: String(parts[2])),
            parts[3].count == 4, let year = Int(parts[3]), parts[5] == "GMT" || parts[5] == "UTC"
        else { return nil }
        let clock = parts[4].split(separator: ":", omittingEmptySubsequences: false).map { Int($0) }
        guard clock.count == 3, let hour = clock[0], let minute = clock[1], let second = clock[2],
            (0...23).contains(hour), (0...59).contains(minute), (0...60).contains(second)
        else { return nil }
        var fields = tm()
        fields.tm_year = Int32(year - 1900)
        fields.tm_mon = Int32(month)
        fields.tm_mday = Int32(day)
        fields.tm_hour = Int32(hour)
        fields.tm_min = Int32(minute)
        fields.tm_sec = Int32(second)
        return Date(timeIntervalSince1970: Double(timegm(&fields)))
    }
}
