/// Removes stored credentials: `rc-agent logout`.
public struct LogoutService: Sendable {
    let store: any CredentialStore

    public init(store: any CredentialStore) { self.store = store }

    /// Removes `profile`'s item, or every rc-agent item when `profile` is nil.
    /// Returns the profiles whose items were removed; removing nothing is not an error. A profile
    /// whose credentials come from a source throws ``ReadOnlyCredentialsError``: they stay usable,
    /// and the error says where they have to be removed.
    public func logout(profile: String?) async throws -> [String] {
        let profiles: [String]
        if let profile {
            if let refusal = store.readOnly(profile: profile) { throw refusal }
            profiles = [profile]
        } else {
            profiles = try await store.list().map(\.profile)
        }
        var removed: [String] = []
        for name in profiles {
            if try await store.delete(profile: name) { removed.append(name) }
        }
        return removed
    }
}
