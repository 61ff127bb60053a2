import Foundation

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

    public init(
        connectTimeout: Double = 10, readTimeout: Double = 30, requestTimeout: Double = 60, caFile: String? = nil,
        environment: [String: String] = ProcessInfo.processInfo.environment
    ) {
        self.connectTimeout = connectTimeout
        self.readTimeout = readTimeout
        self.requestTimeout = requestTimeout
        self.caFile = caFile
        self.environment = environment
    }

    /// The CA bundle in effect: `caFile`, else `SSL_CERT_FILE`.
    public var effectiveCAFile: String? {
        if let caFile, !caFile.isEmpty { return caFile }
        if let file = environment["SSL_CERT_FILE"], !file.isEmpty { return file }
        return nil
    }
}

extension HTTPSettings {
    /// The network settings of `profile`: its `ca_file` and the process's proxy/CA environment.
    public init(settings: Settings, profile: String) {
        self.init(caFile: settings.config.effective(profile: profile).caFile, environment: settings.environment)
    }
}
