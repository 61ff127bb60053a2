import NIOCore
import RCAgentCore

/// The tenant's HTTP side as the agent's proxy uses it: one request, the answer's body streamed.
/// `RiskCloudClient` (RCAgentLive) is the real one.
public protocol TenantStreaming: Sendable {
    /// One request, one attempt; the answer's body arrives as the caller reads it.
    func stream(
        method: String, tenant: TenantURL, path: String, headers: [(name: String, value: String)],
        body: TenantRequestBody?, token: Secret?
    ) async throws -> StreamingUpstreamResponse
}

/// The body of a proxied request.
public enum TenantRequestBody: Sendable {
    /// All of it, in hand (it can be sent twice).
    case bytes([UInt8])
    /// Passed on as it arrives, once; `length` when the caller declared it (`Content-Length`),
    /// else it goes out chunked.
    case stream(any AsyncSequence<ByteBuffer, any Error> & Sendable, length: Int?)

    /// False for a streamed body, which can be sent only once.
    public var canResend: Bool {
        if case .stream = self { return false }
        return true
    }
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
