import FoundationEssentials

/// `GET /v1/status`: the agent and what it knows per profile.
public struct AgentStatus: Codable, Sendable, Equatable {
    public init(version: String, pid: Int32, uptime: Int, socket: String, keyring: KeyringState, profiles: [Profile]) {
        self.version = version
        self.pid = pid
        self.uptime = uptime
        self.socket = socket
        self.keyring = keyring
        self.profiles = profiles
    }

    public var version: String
    public var pid: Int32
    /// Seconds since the agent started.
    public var uptime: Int
    public var socket: String
    /// The worst state of the profiles' backends: `ok`, `locked` or `unavailable`.
    public var keyring: KeyringState
    public var profiles: [Profile]

    public struct Profile: Codable, Sendable, Equatable {
        public init(
            profile: String, url: String?, clientID: String?, keyring: KeyringState, token: TokenInfo,
            lastError: ErrorInfo?, rotation: RotationStatus?, backend: CredentialBackend? = nil
        ) {
            self.profile = profile
            self.backend = backend
            self.url = url
            self.clientID = clientID
            self.keyring = keyring
            self.token = token
            self.lastError = lastError
            self.rotation = rotation
        }

        public var profile: String
        /// Where the profile's credentials come from (absent from agents before 0.4).
        public var backend: CredentialBackend?
        public var url: String?
        public var clientID: String?
        /// `ok`, `locked`, `missing` (no item, variable or file) or `unavailable`, for the profile's own
        /// backend: only `secret-service` profiles are `unavailable` on a machine without a session bus.
        public var keyring: KeyringState
        public var token: TokenInfo
        public var lastError: ErrorInfo?
        /// The secret's age against the rotation policy, when the keyring item says when it was stored.
        public var rotation: RotationStatus?

        enum CodingKeys: String, CodingKey {
            case profile, backend, url, keyring, token, rotation
            case clientID = "client_id"
            case lastError = "last_error"
        }
    }

    public struct TokenInfo: Codable, Sendable, Equatable {
        public init(state: TokenState, expiresAt: String?, expiresIn: Int?) {
            self.state = state
            self.expiresAt = expiresAt
            self.expiresIn = expiresIn
        }

        /// `none`, `valid`, `refreshing` or `failing`.
        public var state: TokenState
        /// RFC 3339 UTC.
        public var expiresAt: String?
        public var expiresIn: Int?

        enum CodingKeys: String, CodingKey {
            case state
            case expiresAt = "expires_at"
            case expiresIn = "expires_in"
        }
    }
}

/// An error document: `{"error":{"code","message","hint","upstream_status"}}`.
public struct ErrorInfo: Codable, Sendable, Equatable {
    public init(code: String, message: String, hint: String?, upstreamStatus: Int?) {
        self.code = code
        self.message = message
        self.hint = hint
        self.upstreamStatus = upstreamStatus
    }

    public var code: String
    public var message: String
    public var hint: String?
    public var upstreamStatus: Int?

    enum CodingKeys: String, CodingKey {
        case code, message, hint
        case upstreamStatus = "upstream_status"
    }
}

/// `GET /v1/token`'s answer.
public struct TokenResponse: Codable, Sendable, Equatable {
    public var accessToken: Secret
    /// Always `Bearer`.
    public var tokenType: String
    /// RFC 3339 UTC.
    public var expiresAt: String
    /// Whole seconds left when the agent answered.
    public var expiresIn: Int
    public var profile: String
    public var url: String
    /// The secret's age against the rotation policy (absent when the agent does not know it).
    public var rotation: RotationStatus?

    enum CodingKeys: String, CodingKey {
        case accessToken = "access_token"
        case tokenType = "token_type"
        case expiresAt = "expires_at"
        case expiresIn = "expires_in"
        case profile, url, rotation
    }

    /// The JSON document as the agent sends it (one line and a newline) — it holds the token.
    public func jsonText() throws -> String {
        String(decoding: try WireJSON.encode(self), as: UTF8.self) + "\n"
    }

    public init(
        accessToken: Secret, tokenType: String = "Bearer", expiresAt: String, expiresIn: Int, profile: String, url: String,
        rotation: RotationStatus?
    ) {
        self.accessToken = accessToken
        self.tokenType = tokenType
        self.expiresAt = expiresAt
        self.expiresIn = expiresIn
        self.profile = profile
        self.url = url
        self.rotation = rotation
    }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        accessToken = Secret(try container.decode(String.self, forKey: .accessToken))
        tokenType = try container.decode(String.self, forKey: .tokenType)
        expiresAt = try container.decode(String.self, forKey: .expiresAt)
        expiresIn = try container.decode(Int.self, forKey: .expiresIn)
        profile = try container.decode(String.self, forKey: .profile)
        url = try container.decode(String.self, forKey: .url)
        rotation = try container.decodeIfPresent(RotationStatus.self, forKey: .rotation)
    }

    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(accessToken.reveal(), forKey: .accessToken)
        try container.encode(tokenType, forKey: .tokenType)
        try container.encode(expiresAt, forKey: .expiresAt)
        try container.encode(expiresIn, forKey: .expiresIn)
        try container.encode(profile, forKey: .profile)
        try container.encode(url, forKey: .url)
        try container.encodeIfPresent(rotation, forKey: .rotation)
    }
}

/// Where a profile's token stands (`GET /v1/status`).
public enum TokenState: String, Sendable, Codable, Equatable {
    /// No token held, nothing failing.
    case none
    /// A token is held and the last upstream call succeeded.
    case valid
    /// An upstream call is in flight.
    case refreshing
    /// The last upstream call failed (a held token may still be valid and served).
    case failing
}
