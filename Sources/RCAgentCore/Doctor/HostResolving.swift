/// Name resolution, the I/O edge of doctor's DNS step. `SystemResolver` (RCAgentLive) is the real one.
public protocol HostResolving: Sendable {
    /// The addresses `host` resolves to (numeric strings); nil when it does not resolve.
    func resolve(host: String) async -> [String]?
}
