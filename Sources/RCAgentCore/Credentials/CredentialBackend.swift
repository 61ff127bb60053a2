import FoundationEssentials

/// Where a profile's credentials come from: `[profiles.NAME] backend = "…"`.
///
/// Stores (`secret-service`, `keyctl`) are written by `login` and `rotate` and emptied by
/// `logout`; sources (`env`, `file`) are delivered by something else and only read.
public enum CredentialBackend: String, Sendable, Codable, CaseIterable, Equatable {
    /// The desktop keyring (libsecret): gnome-keyring, KWallet, KeePassXC. The default.
    case secretService = "secret-service"
    /// The Linux kernel keyring: `user` keys in the user's persistent keyring. Survives logout,
    /// not a reboot.
    case keyctl
    /// `RC_CLIENT_ID` and `RC_CLIENT_SECRET` (or `RC_CLIENT_SECRET_FILE`), `RC_AGENT_URL`.
    case env
    /// A file another system delivers and rotates (`client_secret_file`, or systemd's
    /// `$CREDENTIALS_DIRECTORY/rc-agent.PROFILE`).
    case file

    /// True for the backends `login`, `rotate` and `logout` can write.
    public var isStore: Bool { self == .secretService || self == .keyctl }

    /// Where the credentials are, in a few words for `status`, `doctor` and `login`.
    public var summary: String {
        switch self {
        case .secretService: return "the desktop keyring (Secret Service)"
        case .keyctl: return "the kernel keyring (keyctl); it \(Self.keyctlLifetime)"
        case .env: return "the environment (\(CredentialEnvironment.clientID), \(CredentialEnvironment.secret)); nothing is stored"
        case .file: return "a file delivered by another system (read-only; re-read when it changes)"
        }
    }

    /// The description of a profile's `keyctl` key is this and the profile name.
    public static let keyctlKeyPrefix = "rc-agent:"

    /// How long `keyctl` credentials last.
    public static let keyctlLifetime = "survives logout, not a reboot (like ssh-agent: log in again after a reboot)"

    /// The accepted values, for error messages.
    public static let choices = allCases.map { "\"\($0.rawValue)\"" }.joined(separator: ", ")

    /// The backend of `profile`:
    /// 1. for the selected profile, the environment when `RC_CLIENT_ID` or a secret variable is set
    ///    (like `GH_TOKEN`: what a CI job exports wins over what a machine has stored);
    /// 2. `[profiles.NAME] backend`;
    /// 3. `file` when the profile names a `client_secret_file`;
    /// 4. `secret-service`.
    public static func of(
        profile: String, config: ConfigFile, environment: [String: String], selectedProfile: String
    ) -> CredentialBackend {
        if profile == selectedProfile, CredentialEnvironment.isPresent(environment) { return .env }
        let configured = config.profiles[profile]
        if let backend = configured?.backend { return backend }
        if configured?.clientSecretFile != nil { return .file }
        return .secretService
    }

    /// The secret file of a `file` profile: `client_secret_file`, else
    /// `$CREDENTIALS_DIRECTORY/rc-agent.PROFILE` (systemd credentials). Nil when neither is there.
    public static func secretFile(profile: String, config: ConfigFile, environment: [String: String]) -> String? {
        if let path = config.profiles[profile]?.clientSecretFile, !path.isEmpty { return path }
        if let directory = environment["CREDENTIALS_DIRECTORY"], directory.hasPrefix("/") {
            return directory + "/rc-agent.\(profile)"
        }
        return nil
    }
}

/// The environment variables of the `env` backend.
public enum CredentialEnvironment {
    /// The Client ID.
    public static let clientID = "RC_CLIENT_ID"
    /// The Client Secret itself (a CI's masked variable).
    public static let secret = "RC_CLIENT_SECRET"
    /// A file holding the Client Secret.
    public static let secretFile = "RC_CLIENT_SECRET_FILE"
    /// Variables that hold or point at the secret: `exec` removes them from the child's environment.
    public static let secretVariables = [secret, secretFile]

    /// True when any of the variables is set (non-empty): the selected profile then uses them.
    public static func isPresent(_ environment: [String: String]) -> Bool {
        ([clientID] + secretVariables).contains { !(environment[$0] ?? "").isEmpty }
    }
}

extension ConfigFile {
    /// The config as an agent started with `env` credentials sees it: the selected profile is one
    /// of its profiles (with `RC_AGENT_URL`) even when no config file names it.
    public func addingEnvironmentProfile(_ profile: String, environment: [String: String]) -> ConfigFile {
        guard CredentialEnvironment.isPresent(environment), profiles[profile] == nil else { return self }
        var config = self
        config.profiles[profile] = ProfileConfig(url: environment["RC_AGENT_URL"].flatMap { $0.isEmpty ? nil : $0 })
        return config
    }
}

/// How a profile's credentials look right now, without their secret: what `status` and
/// `GET /v1/status` report per profile.
public struct CredentialState: Sendable, Equatable {
    /// Where the credentials come from.
    public var backend: CredentialBackend
    /// `ok`, `missing` (no item, variable or file), `locked` or `unavailable`.
    public var keyring: KeyringState
    /// The credentials' attributes when they are there.
    public var summary: CredentialSummary?
    /// Why `keyring` is not `ok` (an error's message and fix), for people.
    public var error: String?
    /// Problems that do not stop rc-agent (a secret file readable by others).
    public var warnings: [String]

    public init(
        backend: CredentialBackend, keyring: KeyringState, summary: CredentialSummary? = nil, error: String? = nil,
        warnings: [String] = []
    ) {
        self.backend = backend
        self.keyring = keyring
        self.summary = summary
        self.error = error
        self.warnings = warnings
    }
}

/// `rotate`, `logout` or `login` on a source: the secret has to change where it comes from.
public struct ReadOnlyCredentialsError: RCAgentError, Equatable {
    public let profile: String
    public let backend: CredentialBackend
    /// Where the secret lives: the variable names, or the file's path.
    public let location: String

    public init(profile: String, backend: CredentialBackend, location: String) {
        self.profile = profile
        self.backend = backend
        self.location = location
    }

    public var code: ErrorCode { .readOnlyCredentials }
    public var message: String {
        "profile '\(profile)' reads its credentials from \(location) (backend \"\(backend.rawValue)\"); rc-agent does not change them"
    }
    public var hint: String? {
        switch backend {
        case .env:
            return "change \(CredentialEnvironment.secret) where it is set (the CI's masked variable, the service's "
                + "environment), or unset \(CredentialEnvironment.clientID) and \(CredentialEnvironment.secret) to use a store"
        case .file:
            return "replace the secret in \(location) through whatever delivers it (Vault Agent, Kubernetes Secret, "
                + "systemd-creds); rc-agent re-reads it when it changes"
        case .secretService, .keyctl:
            return nil
        }
    }
}

/// A source's credentials cannot be read: a variable is missing, the file is unreadable.
public struct CredentialSourceError: RCAgentError, Equatable {
    public let message: String
    public let hint: String?

    public init(_ message: String, hint: String?) {
        self.message = message
        self.hint = hint
    }

    public var code: ErrorCode { .credentialsUnavailable }
}
