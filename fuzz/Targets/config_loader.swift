// libFuzzer target: the config loader (TOML → ConfigFile). Whatever the file holds, loading it
// either fails with a ConfigError or gives settings every command can use.
import Foundation
@testable import RCAgentCore

@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzConfig(_ data: UnsafePointer<UInt8>, _ size: Int) -> CInt {
    let text = String(decoding: UnsafeBufferPointer(start: data, count: size), as: UTF8.self)
    do {
        let config = try ConfigFile.parse(text, path: "fuzz.toml")
        for name in config.profiles.keys {
            precondition(ProfileName.isValid(name), "accepted profile name \(name)")
            let effective = config.effective(profile: name)
            _ = RotationPolicy(config: config, profile: name).status(created: Date(timeIntervalSince1970: 0), now: Date())
            _ = effective.url.map { try? TenantURL(parsing: $0) }
        }
        _ = ConfigWriter.setting("url", to: "https://acme.logicgate.com", profile: "default", in: text)
    } catch is ConfigError {
    } catch {
        preconditionFailure("not a ConfigError: \(error)")
    }
    return 0
}
