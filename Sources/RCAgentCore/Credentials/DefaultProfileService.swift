/// Makes a profile the default one (`rc-agent profile use NAME`): `[defaults] profile` in the
/// config file, written with ``ConfigWriter`` so that comments and other settings stay.
public struct DefaultProfileService: Sendable {
    let store: any CredentialStore
    let configPath: String

    public init(store: any CredentialStore, configPath: String) {
        self.store = store
        self.configPath = configPath
    }

    /// Sets the default to `profile`; refuses a profile without stored credentials (a default that
    /// every command would then fail on). A locked or unavailable keyring fails here too, before
    /// the config is touched.
    public func use(profile name: String) async throws {
        let profile = try ProfileName.validated(name)
        guard try await store.list().contains(where: { $0.profile == profile }) else {
            throw NotLoggedInError(profile: profile)
        }
        try ConfigWriter(path: configPath).prepare(defaultProfile: profile).commit()
    }
}
