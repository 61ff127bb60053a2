import FoundationEssentials
import Glibc

/// One profile's settings from the config file. Never holds a secret.
public struct ProfileConfig: Sendable, Equatable {
    /// The tenant URL as written in the file (normalise with ``TenantURL``).
    public var url: String?
    /// Extra CA bundle for this tenant (PEM), e.g. behind a TLS-inspecting proxy.
    public var caFile: String?
    /// Days after which the secret should be rotated (nil: the `[defaults]` value).
    public var rotateAfterDays: Int?
    /// Days before that date when reminders start (nil: the `[defaults]` value).
    public var remindBeforeDays: Int?
    /// Where the credentials come from (nil: see ``CredentialBackend/of(profile:config:environment:selectedProfile:)``).
    public var backend: CredentialBackend?
    /// The Client ID of a `file` profile (the other backends keep it with the secret).
    public var clientID: String?
    /// The file holding the Client Secret of a `file` profile.
    public var clientSecretFile: String?

    public init(
        url: String? = nil, caFile: String? = nil, rotateAfterDays: Int? = nil, remindBeforeDays: Int? = nil,
        backend: CredentialBackend? = nil, clientID: String? = nil, clientSecretFile: String? = nil
    ) {
        self.url = url
        self.caFile = caFile
        self.rotateAfterDays = rotateAfterDays
        self.remindBeforeDays = remindBeforeDays
        self.backend = backend
        self.clientID = clientID
        self.clientSecretFile = clientSecretFile
    }
}

/// The parsed config file:
///
/// ```toml
/// [defaults]
/// profile = "default"        # used when neither --profile nor RC_PROFILE is given
/// keyring_timeout = 30       # seconds a keyring call may take (an unlock prompt may show)
/// proxy_max_body = 67108864  # bytes of a request body the agent's proxy passes on (64 MiB)
/// rotate_after_days = 90
/// remind_before_days = 14
///
/// [profiles.default]
/// url = "https://acme.logicgate.com"
/// ca_file = "/etc/ssl/corp-ca.pem"   # optional
/// backend = "keyctl"                  # secret-service (default), keyctl, env, file
///
/// [profiles.service]
/// url = "https://acme.logicgate.com"
/// backend = "file"
/// client_id = "…"
/// client_secret_file = "/run/secrets/rc"   # else $CREDENTIALS_DIRECTORY/rc-agent.service
/// ```
///
/// Unknown keys are kept in the file and reported as ``warnings``, never fatal.
public struct ConfigFile: Sendable, Equatable {
    /// Settings that apply to every profile unless the profile overrides them.
    public var defaults: ProfileConfig
    /// `[defaults] profile`.
    public var defaultProfile: String?
    /// `[defaults] keyring_timeout` in seconds.
    public var keyringTimeout: Double?
    /// `[defaults] proxy_max_body` in bytes.
    public var proxyMaxBody: Int?
    /// `[profiles.NAME]` tables.
    public var profiles: [String: ProfileConfig]
    /// Human-readable notes about keys rc-agent does not know (kept in the file as they are), and
    /// about a file others can write.
    public var warnings: [String]

    /// An empty configuration (what a missing file means).
    public init() {
        defaults = ProfileConfig()
        profiles = [:]
        warnings = []
    }

    /// The largest config file read (1 MiB): parsing is linear, but the agent re-reads it often.
    public static let maximumBytes = 1 << 20

    /// Reads `path`; a missing file is an empty configuration.
    public static func load(path: String) throws -> ConfigFile {
        guard let data = FileManager.default.contents(atPath: path) else {
            if FileManager.default.fileExists(atPath: path) {
                throw ConfigError(path: path, line: nil, key: nil, reason: "the file cannot be read")
            }
            return ConfigFile()
        }
        guard data.count <= maximumBytes else {
            throw ConfigError(path: path, line: nil, key: nil, reason: "the file is larger than 1 MiB; a config this size is a mistake")
        }
        guard let text = String(data: data, encoding: .utf8) else {
            throw ConfigError(path: path, line: nil, key: nil, reason: "the file is not UTF-8")
        }
        var config = try parse(text, path: path)
        config.warnings += accessWarnings(path: path)
        return config
    }

    /// Who else could change the file at `path` (a symbolic link's target): a config another user
    /// can write can send the secret elsewhere (`url`) or add trust roots (`ca_file`).
    static func accessWarnings(path: String) -> [String] {
        var info = stat()
        guard stat(path, &info) == 0 else { return [] }
        var warnings: [String] = []
        let mode = info.st_mode & 0o777
        if mode & 0o022 != 0 {
            warnings.append(
                "\(path) is writable by \(mode & 0o002 != 0 ? "everyone" : "its group") (mode \(String(mode, radix: 8))): "
                    + "whoever can write it can change the tenant URL or add trust roots with ca_file; "
                    + "run `chmod 600 \(path)`")
        }
        if info.st_uid != geteuid() && info.st_uid != 0 {
            warnings.append("\(path) is owned by uid \(info.st_uid), not by you (uid \(geteuid()))")
        }
        return warnings
    }

    /// Parses TOML `text` (``parse(_:path:)`` answers a repeated text from memory).
    static func parseDocument(_ text: String, path: String) throws -> ConfigFile {
        let table: TOMLTable
        do {
            table = try TOMLReader.parse(text)
        } catch {
            throw ConfigError(path: path, line: error.line, key: nil, reason: error.description)
        }
        var reader = TableReader(text: text, path: path)
        var config = ConfigFile()
        for key in table.keys {
            switch key {
            case "defaults":
                let defaults = try reader.table(table[key], key: "defaults")
                config.defaults = try reader.profile(defaults, prefix: "defaults", extraKeys: ["profile", "keyring_timeout", "proxy_max_body"])
                config.defaultProfile = try reader.string(defaults["profile"], key: "defaults.profile")
                if let name = config.defaultProfile, !ProfileName.isValid(name) {
                    throw reader.error(key: "defaults.profile", reason: ProfileName.rule)
                }
                config.keyringTimeout = try reader.number(defaults["keyring_timeout"], key: "defaults.keyring_timeout")
                if let timeout = config.keyringTimeout, timeout <= 0 {
                    throw reader.error(key: "defaults.keyring_timeout", reason: "must be a positive number of seconds")
                }
                if let bytes = try reader.number(defaults["proxy_max_body"], key: "defaults.proxy_max_body") {
                    guard bytes >= 1, bytes <= Double(Int32.max), bytes == bytes.rounded() else {
                        throw reader.error(
                            key: "defaults.proxy_max_body", reason: "must be a whole number of bytes between 1 and 2147483647")
                    }
                    config.proxyMaxBody = Int(bytes)
                }
            case "profiles":
                let profiles = try reader.table(table[key], key: "profiles")
                for name in profiles.keys {
                    guard ProfileName.isValid(name) else {
                        throw reader.error(key: "profiles.\(name)", reason: "invalid profile name: \(ProfileName.rule)")
                    }
                    let profile = try reader.table(profiles[name], key: "profiles.\(name)")
                    config.profiles[name] = try reader.profile(profile, prefix: "profiles.\(name)", extraKeys: [])
                }
            default:
                reader.warnings.append("\(path): unknown key '\(key)' (kept, ignored)")
            }
        }
        config.warnings = reader.warnings
        return config
    }

    /// `profile`'s settings with `[defaults]` filled in where the profile says nothing.
    public func effective(profile name: String) -> ProfileConfig {
        let profile = profiles[name] ?? ProfileConfig()
        return ProfileConfig(
            url: profile.url,
            caFile: profile.caFile ?? defaults.caFile,
            rotateAfterDays: profile.rotateAfterDays ?? defaults.rotateAfterDays,
            remindBeforeDays: profile.remindBeforeDays ?? defaults.remindBeforeDays,
            backend: profile.backend, clientID: profile.clientID, clientSecretFile: profile.clientSecretFile
        )
    }
}

/// Reads typed values out of TOML tables, turning type mismatches into ``ConfigError``s
/// that name the file, the line and the key.
private struct TableReader {
    let text: String
    let path: String
    var warnings: [String] = []

    init(text: String, path: String) {
        self.text = text
        self.path = path
    }

    func error(key: String, reason: String) -> ConfigError {
        ConfigError(path: path, line: line(of: key), key: key, reason: reason)
    }

    func table(_ value: TOMLValue?, key: String) throws -> TOMLTable {
        guard let table = value?.table else { throw error(key: key, reason: "must be a table ([\(key)])") }
        return table
    }

    func string(_ value: TOMLValue?, key: String) throws -> String? {
        guard let value else { return nil }
        guard let string = value.string else { throw error(key: key, reason: "must be a string") }
        return string
    }

    func number(_ value: TOMLValue?, key: String) throws -> Double? {
        guard let value else { return nil }
        if let int = value.int { return Double(int) }
        if let double = value.double { return double }
        throw error(key: key, reason: "must be a number")
    }

    func days(_ value: TOMLValue?, key: String) throws -> Int? {
        guard let value else { return nil }
        guard let int = value.int else { throw error(key: key, reason: "must be a whole number of days") }
        guard int >= 0 else { throw error(key: key, reason: "must not be negative") }
        return int
    }

    mutating func profile(_ table: TOMLTable, prefix: String, extraKeys: Set<String>) throws -> ProfileConfig {
        var profile = ProfileConfig()
        for key in table.keys {
            let fullKey = "\(prefix).\(key)"
            switch key {
            case "url":
                profile.url = try string(table[key], key: fullKey)
            case "ca_file":
                profile.caFile = try string(table[key], key: fullKey)
            case "rotate_after_days":
                profile.rotateAfterDays = try days(table[key], key: fullKey)
            case "remind_before_days":
                profile.remindBeforeDays = try days(table[key], key: fullKey)
            case "backend" where !prefix.hasPrefix("defaults"):
                guard let name = try string(table[key], key: fullKey) else { continue }
                guard let backend = CredentialBackend(rawValue: name) else {
                    throw error(key: fullKey, reason: "must be one of \(CredentialBackend.choices)")
                }
                profile.backend = backend
            case "client_id" where !prefix.hasPrefix("defaults"):
                profile.clientID = try string(table[key], key: fullKey)
            case "client_secret_file" where !prefix.hasPrefix("defaults"):
                guard let path = try string(table[key], key: fullKey) else { continue }
                guard path.hasPrefix("/") else { throw error(key: fullKey, reason: "must be an absolute path") }
                profile.clientSecretFile = path
            case _ where extraKeys.contains(key):
                continue
            default:
                warnings.append("\(path): unknown key '\(fullKey)' (kept, ignored)")
            }
        }
        return profile
    }

    /// The 1-based line where `key`'s last component is assigned, or where its table starts.
    /// The reader keeps no positions for values, so this scans the text: good enough to point a person at it.
    func line(of key: String) -> Int? {
        let components = key.split(separator: ".").map(String.init)
        guard let last = components.last else { return nil }
        let tableHeader = components.dropLast().joined(separator: ".")
        var currentTable = ""
        for (index, rawLine) in text.split(separator: "\n", omittingEmptySubsequences: false).enumerated() {
            let line = rawLine.trimmingBlanks()
            if line.hasPrefix("[") {
                currentTable = line.trimming { $0 == "[" || $0 == "]" || $0 == " " }
                    .replacing("\"", with: "")
                if currentTable == key { return index + 1 }
                continue
            }
            if currentTable == tableHeader, line.hasPrefix(last),
                line.dropFirst(last.count).trimmingBlanks().hasPrefix("=")
            {
                return index + 1
            }
        }
        return nil
    }
}

/// The config file is malformed or holds a value of the wrong type.
public struct ConfigError: RCAgentError, Equatable {
    public let path: String
    public let line: Int?
    public let key: String?
    public let reason: String

    public var code: ErrorCode { .configError }
    public var message: String {
        var location = path
        if let line { location += ":\(line)" }
        if let key { return "\(location): '\(key)' \(reason)" }
        return "\(location): \(reason)"
    }
    public var hint: String? { "fix the file, or point --config / RC_AGENT_CONFIG at another one" }
}

/// Profile names: `[A-Za-z0-9._-]{1,64}`.
public enum ProfileName {
    /// The rule, for error messages.
    public static let rule = "profile names are 1 to 64 characters from A-Z a-z 0-9 . _ -"

    /// True when `name` follows the rule.
    public static func isValid(_ name: String) -> Bool {
        guard (1...64).contains(name.utf8.count) else { return false }
        return name.utf8.allSatisfy { byte in
            switch byte {
            case UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "a")...UInt8(ascii: "z"),
                UInt8(ascii: "0")...UInt8(ascii: "9"), UInt8(ascii: "."), UInt8(ascii: "_"), UInt8(ascii: "-"):
                return true
            default:
                return false
            }
        }
    }

    /// Returns `name` or throws a usage error that states the rule.
    public static func validated(_ name: String) throws -> String {
        guard isValid(name) else { throw UsageError("invalid profile name '\(name)'", hint: rule) }
        return name
    }
}
