// libFuzzer target: the token endpoint's answer. Whatever the body, it is either refused as an
// unexpected response or gives a token the agent can serve (expires_in and expires_at computed
// the way the agent does for every answer).
import Foundation
import RCAgentCore

let tenant = try! TenantURL(parsing: "https://acme.logicgate.com")
let sentAt = Date(timeIntervalSince1970: 1_800_000_000)

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzTokenResponse(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let body = Array(UnsafeBufferPointer(start: data, count: size))
    let response = UpstreamResponse(status: 200, headers: [("Content-Type", "application/json")], body: body)
    guard let token = try? AccessToken(
        tokenAnswer: response, sentAt: sentAt, tenant: tenant, path: "/api/v1/account/token", redacting: [])
    else { return 0 }
    precondition(!token.value.isEmpty)
    // What the agent does with every token it serves or logs.
    _ = max(0, Int(token.remaining(at: sentAt)))
    _ = WireJSON.rfc3339(token.expiresAt)
    return 0
}
