import FoundationEssentials

/// Network settings for the tenant's HTTP client: timeouts, the CA bundle, the proxy environment.
public struct HTTPSettings: Sendable {
    /// Seconds to establish a connection (TCP + TLS).
    public var connectTimeout: Double
    /// Seconds of silence allowed while waiting for the answer.
    public var readTimeout: Double
    /// Seconds the whole request may take.
    public var requestTimeout: Double
    /// An extra PEM CA bundle (config `ca_file`); nil falls back to `SSL_CERT_FILE` from `environment`.
    public var caFile: String?
    /// Where `HTTPS_PROXY`, `NO_PROXY` and `SSL_CERT_FILE` are read from.
    public var environment: [String: String]
    /// Connections a client opens to one host at most; more requests wait for one of them.
    public var maximumConnectionsPerHost: Int

    /// Connections per host when nothing else is said (AsyncHTTPClient's own default).
    public static let defaultConnectionsPerHost = 8

    public init(
        connectTimeout: Double = 10, readTimeout: Double = 30, requestTimeout: Double = 60, caFile: String? = nil,
        environment: [String: String] = ProcessInfo.processInfo.environment,
        maximumConnectionsPerHost: Int = HTTPSettings.defaultConnectionsPerHost
    ) {
        self.connectTimeout = connectTimeout
        self.readTimeout = readTimeout
        self.requestTimeout = requestTimeout
        self.caFile = caFile
        self.environment = environment
        self.maximumConnectionsPerHost = maximumConnectionsPerHost
    }

    /// The CA bundle in effect: `caFile`, else `SSL_CERT_FILE`.
    public var effectiveCAFile: String? {
        if let caFile, !caFile.isEmpty { return caFile }
        if let file = environment["SSL_CERT_FILE"], !file.isEmpty { return file }
        return nil
    }
}

extension HTTPSettings {
    /// The network settings of `profile` in `config`: its own `ca_file`, else `[defaults] ca_file`,
    /// and the proxy/CA environment. Every component (login, rotate, doctor, api, the agent) gets
    /// its settings from here, through `LiveEnvironment`.
    public init(config: ConfigFile, profile: String, environment: [String: String]) {
        self.init(caFile: config.effective(profile: profile).caFile, environment: environment)
    }
}
