/// Removes stored credentials: `rc-agent logout`.
///
/// Every writable store is gone over directly, not only the one the profile's backend routes to
/// now: a profile moved to another backend (or an edited config) may have left an item behind,
/// and that secret must not outlive a logout. A store that cannot be reached (no session bus)
/// does not stop the others; the outcome says which could not be.
public struct LogoutService: Sendable {
    let store: any CredentialStore
    let stores: [CredentialBackend: any CredentialStore]

    /// - Parameters:
    ///   - store: the profile router: refuses profiles whose credentials come from a source.
    ///   - stores: each writable store (`secret-service`, `keyctl`).
    public init(store: any CredentialStore, stores: [CredentialBackend: any CredentialStore]) {
        self.store = store
        self.stores = stores
    }

    /// What a logout did.
    public struct Outcome: Sendable {
        /// The profiles whose items were removed (from any store), sorted.
        public var removed: [String]
        /// The stores that could not be reached or refused, with the error.
        public var unreachable: [(backend: CredentialBackend, error: any Error)]
    }

    /// Removes `profile`'s items from every store, or every rc-agent item when `profile` is nil.
    /// Removing nothing is not an error. A profile whose credentials come from a source throws
    /// ``ReadOnlyCredentialsError``: they stay usable, and the error says where to remove them.
    /// When no store could be reached at all, or the profile's own store could not, its error is
    /// thrown (after the others were done).
    public func logout(profile: String?) async throws -> Outcome {
        if let profile, let refusal = store.readOnly(profile: profile) { throw refusal }
        var removed = Set<String>()
        var unreachable: [(backend: CredentialBackend, error: any Error)] = []
        for (backend, store) in stores.sorted(by: { $0.key.rawValue < $1.key.rawValue }) {
            do {
                // Each store deletes what it listed itself.
                let names: [String]
                if let profile { names = [profile] } else { names = try await store.list().map(\.profile) }
                for name in Set(names) {
                    if try await store.delete(profile: name) { removed.insert(name) }
                }
            } catch {
                unreachable.append((backend, error))
            }
        }
        let own = profile.map { store.backend(for: $0) }
        let everyStore = unreachable.count == stores.count ? unreachable.first : nil
        if let failure = unreachable.first(where: { $0.backend == own }) ?? everyStore { throw failure.error }
        return Outcome(removed: removed.sorted(), unreachable: unreachable)
    }
}
