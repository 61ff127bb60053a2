import NIOCore
import RCAgentCore

/// The tenant's HTTP side as the agent's proxy uses it: one request, the answer's body streamed.
/// `RiskCloudClient` (RCAgentLive) is the real one.
public protocol TenantStreaming: Sendable {
    /// One request, one attempt; the answer's body arrives as the caller reads it.
    func stream(
        method: String, tenant: TenantURL, path: String, headers: [(name: String, value: String)], body: [UInt8]?,
        token: Secret?
    ) async throws -> StreamingUpstreamResponse
}

/// An answer from the tenant whose body is still arriving.
public struct StreamingUpstreamResponse: Sendable {
    public let status: Int
    public let headers: [(name: String, value: String)]
    /// The body as it arrives; iterate it once. Reading slowly slows the tenant down (backpressure).
    public let body: any AsyncSequence<ByteBuffer, any Error> & Sendable

    public init(
        status: Int, headers: [(name: String, value: String)], body: any AsyncSequence<ByteBuffer, any Error> & Sendable
    ) {
        self.status = status
        self.headers = headers
        self.body = body
    }
}
