import RCAgentCore
import Synchronization

/// The config file as the running agent last read it: which profiles exist and their policies.
///
/// Read at start and on reload (SIGHUP); a name it does not know makes it read the file once more
/// before answering `unknown_profile`, so a `login` while the agent runs needs no reload.
public final class AgentProfiles: Sendable {
    private let load: @Sendable () throws -> ConfigFile
    private let onLoad: @Sendable (ConfigFile) -> Void
    private let snapshot: Mutex<ConfigFile>

    /// - Parameters:
    ///   - config: reads the config file.
    ///   - onLoad: told every config read (the HTTP clients follow a profile's `ca_file`).
    public init(
        config load: @escaping @Sendable () throws -> ConfigFile, onLoad: @escaping @Sendable (ConfigFile) -> Void = { _ in }
    ) throws {
        self.load = load
        self.onLoad = onLoad
        let first = try load()
        snapshot = Mutex(first)
        onLoad(first)
    }

    /// Profiles with their URLs and no other settings (tests, and callers without a config file).
    public convenience init(load: @escaping @Sendable () throws -> [String: String?]) throws {
        try self.init(config: {
            var config = ConfigFile()
            config.profiles = try load().mapValues { ProfileConfig(url: $0) }
            return config
        })
    }

    /// Reads the config file again.
    public func reload() throws {
        let fresh = try load()
        snapshot.withLock { $0 = fresh }
        onLoad(fresh)
    }

    /// The profile a request without `profile` means: `[defaults] profile`, else `default` (as on
    /// the command line).
    public var defaultProfile: String { snapshot.withLock { $0.defaultProfile } ?? "default" }

    /// Every profile and its configured URL.
    public var all: [String: String?] { snapshot.withLock { $0.profiles.mapValues(\.url) } }

    /// True when the config names `profile` (re-reading the file once if it did not).
    public func contains(_ profile: String) -> Bool {
        if snapshot.withLock({ $0.profiles[profile] != nil }) { return true }
        try? reload()
        return snapshot.withLock { $0.profiles[profile] != nil }
    }

    /// `requested` (nil: the default profile) and its rotation policy when the config as last read
    /// names it, in one look; never reads the file (the fast path asks on the event loop).
    func known(_ requested: String?) -> (profile: String, policy: RotationPolicy)? {
        snapshot.withLock { config in
            let profile = requested ?? config.defaultProfile ?? "default"
            guard config.profiles[profile] != nil else { return nil }
            return (profile, RotationPolicy(config: config, profile: profile))
        }
    }

    /// The rotation policy of `profile` in the current config.
    public func rotationPolicy(for profile: String) -> RotationPolicy {
        snapshot.withLock { RotationPolicy(config: $0, profile: profile) }
    }
}
