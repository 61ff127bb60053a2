// libFuzzer target: the tenant URL parser. Whatever the input, it either refuses or gives an
// https URL (http only for loopback) whose base parses back to itself.
import Foundation
import RCAgentCore

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzTenantURL(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let text = String(decoding: UnsafeBufferPointer(start: data, count: size), as: UTF8.self)
    guard let url = try? TenantURL(parsing: text) else { return 0 }
    precondition(url.base.hasPrefix("https://") || url.base.hasPrefix("http://"), "scheme of \(url.base)")
    let again = try? TenantURL(parsing: url.base)
    precondition(again == url, "\(url.base) does not parse back to itself")
    _ = url.url(path: "/api/v1/account/token")
    return 0
}
