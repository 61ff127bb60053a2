import Foundation

/// A failure the stand-in injects instead of (or before) its normal answer.
public enum StandInFailure: Sendable, Equatable {
    /// Answer with this status and body (nil: an empty body).
    case status(Int, body: String?)
    /// Answer 429 with `Retry-After: seconds`.
    case retryAfter(seconds: Int)
    /// Wait this long, then answer normally.
    case delay(seconds: Double)
    /// Answer 200 with an HTML maintenance page (not JSON).
    case garbage
    /// Close the TCP connection without answering.
    case closeConnection
    /// Never answer (until the server shuts down).
    case hang
}

/// Which requests an injected failure applies to.
public enum StandInTarget: String, Sendable, CaseIterable {
    /// `POST /api/v1/account/token`.
    case token
    /// The bearer-protected `/api/v2/…` endpoints.
    case api
    /// Both.
    case all

    func matches(_ other: StandInTarget) -> Bool { self == .all || self == other }
}

/// The stand-in's mutable world: clients, issued tokens, failure rules and counters.
///
/// Tests in-process call its methods directly; the `rc-standin` binary exposes the same
/// operations over its `/_standin/…` control API.
/// One body `POST /api/v2/uploads` received.
public struct StandInUpload: Sendable, Equatable {
    public let bytes: Int
    /// SHA-256 of the body, lower-case hex.
    public let sha256: String
    public let contentType: String
}

public actor StandInState {
    struct Client {
        var secret: String
        var restricted: Bool
    }

    struct IssuedToken {
        let clientID: String
        let expiresAt: Date
    }

    struct FailureRule {
        let failure: StandInFailure
        let target: StandInTarget
        var remaining: Int
    }

    /// What the token endpoint decided for one request's credentials.
    enum TokenOutcome {
        case issued(token: String, expiresIn: Int)
        case rejected
    }

    /// What a bearer-protected endpoint decided for one request's token.
    enum BearerOutcome {
        case accepted(restricted: Bool)
        case rejected
    }

    private var clients: [String: Client] = [:]
    private var tokens: [String: IssuedToken] = [:]
    private var liveTokenByClient: [String: String] = [:]
    private var tokenLifetime = 31_536_000
    private var reuseLiveToken = true
    private var rules: [FailureRule] = []
    private var authorizationHeaders: [String] = []
    private var apiAuthorizationHeaders: [String] = []
    private var issuedTokens = 0
    /// How many records `GET /api/v2/records` has (applications: always 2).
    public private(set) var recordCount = 3
    /// Bytes of padding in each record of `GET /api/v2/records` (a `notes` field); 0: none.
    /// Padded pages are streamed record by record, so a page can be many megabytes.
    public private(set) var recordPadding = 0
    /// Body bytes of padded record pages handed to the server so far.
    public private(set) var streamedBodyBytes = 0
    /// What `POST /api/v2/uploads` received, in order.
    public private(set) var uploads: [StandInUpload] = []
    /// Requests to the token endpoint, including rejected and failed ones.
    public private(set) var tokenRequestCount = 0
    /// Requests to the `/api/v2/…` endpoints, including rejected and failed ones.
    public private(set) var apiRequestCount = 0

    public init() {}

    /// Adds a client (or replaces one with the same id). A `restricted` client gets 403 on
    /// `/api/v2/applications`, as a user without Build access does.
    public func addClient(id: String, secret: String, restricted: Bool = false) {
        clients[id] = Client(secret: secret, restricted: restricted)
    }

    /// Replaces a client's secret: the old one stops working at once. The client's issued tokens
    /// are revoked too (whether the real tenant does this is unknown; the agent must cope with either).
    public func resetSecret(clientID: String, newSecret: String) {
        guard clients[clientID] != nil else { return }
        clients[clientID]?.secret = newSecret
        revokeTokens(clientID: clientID)
    }

    /// Lifetime in seconds of newly minted tokens (the tenant's default is about a year).
    public func setTokenLifetime(seconds: Int) { tokenLifetime = max(0, seconds) }

    /// v1 behaviour: while a client's token is live, hand it back again with a smaller
    /// `expires_in` instead of minting a new one. Default on.
    public func setReuseLiveToken(_ on: Bool) { reuseLiveToken = on }

    /// Sets the number of records `GET /api/v2/records` pages through.
    public func setRecordCount(_ count: Int) { recordCount = max(0, count) }

    /// Makes every record `bytes` larger (see ``recordPadding``): with ``setRecordCount(_:)`` a
    /// page of any size can be made as large as a test needs.
    public func setRecordPadding(bytes: Int) { recordPadding = max(0, bytes) }

    /// Makes the next `times` requests to `target` fail with `failure`. Rules apply in the order added.
    public func inject(_ failure: StandInFailure, times: Int = Int.max, target: StandInTarget = .token) {
        guard times > 0 else { return }
        rules.append(FailureRule(failure: failure, target: target, remaining: times))
    }

    /// Removes every injected failure.
    public func clearFailures() { rules.removeAll() }

    /// Invalidates every issued token (bearer calls answer 401 until a new token is fetched).
    public func revokeAllTokens() {
        tokens.removeAll()
        liveTokenByClient.removeAll()
    }

    /// Number of distinct tokens minted so far (a reused live token is not counted again).
    public var mintedTokenCount: Int { issuedTokens }

    /// The `Authorization` headers the token endpoint received, oldest first (the last 50).
    /// For tests that check the Basic header's shape: never log or print them.
    public func lastAuthorizationHeaders() -> [String] { authorizationHeaders }

    /// Every token value minted so far, oldest first — for tests that scan output and files for
    /// leaks: never log or print them.
    public private(set) var mintedTokens: [String] = []

    /// The `Authorization` headers the `/api/v2/…` endpoints received, oldest first (the last 50).
    /// For tests that check what reached the tenant: never log or print them.
    public func lastAPIAuthorizationHeaders() -> [String] { apiAuthorizationHeaders }

    // MARK: - Used by the responder

    func takeFailure(for target: StandInTarget) -> StandInFailure? {
        guard let index = rules.firstIndex(where: { $0.remaining > 0 && $0.target.matches(target) }) else {
            return nil
        }
        let failure = rules[index].failure
        if rules[index].remaining != Int.max { rules[index].remaining -= 1 }
        if rules[index].remaining <= 0 { rules.remove(at: index) }
        return failure
    }

    func countTokenRequest(authorization: String?) {
        tokenRequestCount += 1
        if let authorization {
            authorizationHeaders.append(authorization)
            if authorizationHeaders.count > 50 { authorizationHeaders.removeFirst() }
        }
    }

    func countAPIRequest(authorization: String? = nil) {
        apiRequestCount += 1
        if let authorization {
            apiAuthorizationHeaders.append(authorization)
            if apiAuthorizationHeaders.count > 50 { apiAuthorizationHeaders.removeFirst() }
        }
    }

    func countStreamed(bytes: Int) { streamedBodyBytes += bytes }

    func recordUpload(_ upload: StandInUpload) { uploads.append(upload) }

    /// A record was created: one more in `GET /api/v2/records`. Returns its number.
    func addRecord() -> Int {
        recordCount += 1
        return recordCount
    }

    /// Checks a `Basic` header exactly as the tenant does: base64 of "id:secret", encoded once.
    func issueToken(authorization: String?, now: Date = Date()) -> TokenOutcome {
        guard let authorization, let encoded = Self.credentials(authorization, scheme: "basic"),
            let data = Data(base64Encoded: encoded), let joined = String(data: data, encoding: .utf8),
            let colon = joined.firstIndex(of: ":")
        else { return .rejected }
        let id = String(joined[..<colon])
        let secret = String(joined[joined.index(after: colon)...])
        guard let client = clients[id], client.secret == secret else { return .rejected }

        if reuseLiveToken, let live = liveTokenByClient[id], let issued = tokens[live], issued.expiresAt > now {
            return .issued(token: live, expiresIn: Int(issued.expiresAt.timeIntervalSince(now)))
        }
        let token = Self.mintToken()
        tokens[token] = IssuedToken(clientID: id, expiresAt: now.addingTimeInterval(Double(tokenLifetime)))
        liveTokenByClient[id] = token
        issuedTokens += 1
        mintedTokens.append(token)
        return .issued(token: token, expiresIn: tokenLifetime)
    }

    func checkBearer(authorization: String?, now: Date = Date()) -> BearerOutcome {
        guard let authorization, let token = Self.credentials(authorization, scheme: "bearer"),
            let issued = tokens[token], issued.expiresAt > now, let client = clients[issued.clientID]
        else { return .rejected }
        return .accepted(restricted: client.restricted)
    }

    private func revokeTokens(clientID: String) {
        tokens = tokens.filter { $0.value.clientID != clientID }
        liveTokenByClient[clientID] = nil
    }

    /// The credentials after `Scheme ` when the header uses `scheme` (case-insensitive).
    static func credentials(_ header: String, scheme: String) -> String? {
        let parts = header.split(separator: " ", maxSplits: 1)
        guard parts.count == 2, parts[0].lowercased() == scheme else { return nil }
        return parts[1].trimmingCharacters(in: .whitespaces)
    }

    static func mintToken() -> String {
        "rcst_" + (0..<24).map { _ in String(format: "%02x", UInt8.random(in: 0...255)) }.joined()
    }
}
