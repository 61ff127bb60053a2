// libFuzzer target: the proxy's path check (ProxyTarget). Whatever the input, it either refuses
// or accepts a path that stays under /api/ on the tenant: no dot segment, no empty segment, no
// ';', '/' or '\' hidden by percent-encoding, however often encoded.
import Foundation
import RCAgentCore

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzProxyPath(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let text = String(decoding: UnsafeBufferPointer(start: data, count: size), as: UTF8.self)
    let parts = text.split(separator: "?", maxSplits: 1, omittingEmptySubsequences: false)
    let path = "/v1/proxy/" + String(parts[0])
    let query = parts.count > 1 ? String(parts[1]) : nil
    guard let target = try? ProxyTarget(path: path, query: query) else { return 0 }
    precondition(target.path.hasPrefix("/api/"), "accepted a path outside /api/: \(target.path)")
    precondition(ProfileName.isValid(target.profile), "accepted profile \(target.profile)")
    for segment in target.path.split(separator: "/", omittingEmptySubsequences: false).dropFirst() {
        var decoded = String(segment)
        for _ in 0..<8 { decoded = decoded.removingPercentEncoding ?? decoded }
        precondition(decoded != "." && decoded != "..", "accepted a dot segment: \(target.path)")
        precondition(!decoded.contains(";") && !decoded.contains("\\"), "accepted \(target.path)")
    }
    precondition(!target.pathAndQuery.contains("#"), "accepted a fragment: \(target.pathAndQuery)")
    return 0
}
