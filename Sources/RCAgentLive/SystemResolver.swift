import FoundationEssentials
import RCAgentCore

#if canImport(Glibc)
import Glibc
#endif

/// `getaddrinfo(3)` on a thread of its own (a slow DNS server must not block the cooperative pool).
public struct SystemResolver: HostResolving {
    public init() {}

    public func resolve(host: String) async -> [String]? {
        await withCheckedContinuation { continuation in
            DetachedThread.run { continuation.resume(returning: Self.lookup(host)) }
        }
    }

    static func lookup(_ host: String) -> [String]? {
        var hints = addrinfo()
        hints.ai_socktype = Int32(SOCK_STREAM.rawValue)
        var list: UnsafeMutablePointer<addrinfo>?
        guard getaddrinfo(host, nil, &hints, &list) == 0, let first = list else { return nil }
        defer { freeaddrinfo(first) }
        var addresses: [String] = []
        var next: UnsafeMutablePointer<addrinfo>? = first
        while let entry = next {
            var buffer = [CChar](repeating: 0, count: Int(NI_MAXHOST))
            if let address = entry.pointee.ai_addr,
                getnameinfo(address, entry.pointee.ai_addrlen, &buffer, socklen_t(buffer.count), nil, 0, NI_NUMERICHOST) == 0
            {
                let text = String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
                if !addresses.contains(text) { addresses.append(text) }
            }
            next = entry.pointee.ai_next
        }
        return addresses
    }
}
