import Foundation
import RCAgentTestSupport
import RiskCloudStandIn
import Testing

extension HardeningTests {
    /// Token fetches have a connection pool of their own: proxied requests the tenant holds do not
    /// hold up a token refresh, and past the proxy's per-profile limit the agent answers `503`
    /// (`proxy_busy`) at once.
    @Suite struct ProxyCapacityTests {
        /// The agent's default limit of proxied requests per profile (PROTOCOL.md, "Proxy").
        static let limit = 8

        @Test func heldProxyStreamsDoNotHoldUpATokenRefresh() async throws {
            try await AgentWorld.run { world in
                try await world.start()
                let first = try #require(try await world.token().json?["access_token"] as? String)
                await world.state.setReuseLiveToken(false)
                await world.state.inject(.hang, times: Self.limit, target: .api)
                var held: [BackgroundProcess] = []
                defer { for process in held { process.kill() } }
                for index in 0..<Self.limit {
                    held.append(try world.spawn(
                        "/usr/bin/curl",
                        ["-sS", "--max-time", "300", "--unix-socket", world.socket,
                         "http://localhost/v1/proxy/\(world.profile)/api/v2/records"],
                        name: "held-\(index)"))
                }
                // Every one of them is waiting at the tenant.
                for _ in 0..<1200 {
                    if await world.state.apiRequestCount >= Self.limit { break }
                    try await Task.sleep(nanoseconds: 50_000_000)
                }
                #expect(await world.state.apiRequestCount == Self.limit)
                #expect(held.allSatisfy { $0.exitStatus == nil }, "all \(Self.limit) proxied requests are held")

                let busy = try await world.curl("/v1/proxy/\(world.profile)/api/v2/records")
                #expect(busy.status == 503, "\(busy.run)")
                #expect(busy.errorCode == "proxy_busy", "\(busy.body)")
                #expect(busy.body.contains("already has \(Self.limit) proxied requests in progress"), "\(busy.body)")
                #expect(await world.state.apiRequestCount == Self.limit, "the one over the limit never reached the tenant")

                let tokens = await world.state.tokenRequestCount
                let refreshed = try await world.curl("/v1/token/refresh?profile=\(world.profile)", method: "POST")
                #expect(refreshed.status == 200, "a token refresh is answered while the proxy is full: \(refreshed.run)")
                let second = refreshed.json?["access_token"] as? String
                #expect(second != nil && second != first, "a new token: \(refreshed.body)")
                #expect(await world.state.tokenRequestCount == tokens + 1, "it reached the tenant")
                #expect(held.allSatisfy { $0.exitStatus == nil }, "the proxied requests are still held")
            }
        }
    }
}
