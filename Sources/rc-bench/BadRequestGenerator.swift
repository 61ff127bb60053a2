/// Deterministic bad requests: request `index` of seed `seed` is always the same bytes.
/// Never generates the requests that change the agent's state on purpose (`POST /v1/shutdown`,
/// `DELETE /v1/token`, `POST /v1/token/refresh`).
struct BadRequestGenerator {
    let seed: UInt64

    struct Request {
        var kind: String
        var bytes: [UInt8]
        /// Send EOF after the bytes (a truncated request must not wait for the agent's timeout).
        var halfClose: Bool
    }

    /// SplitMix64.
    struct RNG {
        var state: UInt64
        mutating func next() -> UInt64 {
            state &+= 0x9E37_79B9_7F4A_7C15
            var z = state
            z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
            z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
            return z ^ (z >> 31)
        }
        mutating func below(_ n: Int) -> Int { Int(next() % UInt64(max(1, n))) }
        mutating func pick<T>(_ items: [T]) -> T { items[below(items.count)] }
        mutating func bytes(_ n: Int) -> [UInt8] { (0..<n).map { _ in UInt8(truncatingIfNeeded: next()) } }
    }

    static let paths = [
        "/v1/token", "/v1/status", "/healthz", "/v1/token/refresh", "/v1/shutdown", "/v1/proxy/default/api/v2/records",
        "/", "/v1", "/v2/token", "*",
    ]
    static let traversals = [
        "/v1/proxy/../../../../etc/passwd", "/v1/proxy/default/../../v1/shutdown", "/v1/proxy/%2e%2e/%2e%2e/etc/shadow",
        "/v1/proxy/default/..%2f..%2f..%2fetc%2fpasswd", "/v1/proxy//etc/passwd", "/v1/proxy/default/%2e%2e%2f%2e%2e%2f",
        "/v1/proxy/default/api/../../../../root/.ssh/id_rsa", "/v1/proxy/..\\..\\windows", "/v1/proxy/default/%00/api",
        "/v1/proxy/default/http://169.254.169.254/latest/meta-data", "/v1/proxy/default/@evil.example/api",
        "/v1/proxy/%252e%252e/%252e%252e/", "/v1/proxy/default/api/v2/records/..;/..;/", "/v1/proxy/",
        "/v1/proxy", "/v1/proxy/no-such-profile/api/v2/records", "/v1/proxy/default/api/v2/records?page=-1&size=99999",
    ]
    static let wrongMethods = ["PUT", "PATCH", "TRACE", "OPTIONS", "CONNECT", "PROPFIND", "get", "G E T", "GET\u{0}", "HEAD", "BREW"]

    func request(_ index: Int) -> Request {
        var rng = RNG(state: seed &* 0x1000_0000_01B3 ^ UInt64(index))
        _ = rng.next()
        let host = "Host: localhost\r\n"
        func text(_ s: String, halfClose: Bool = false, kind: String) -> Request {
            Request(kind: kind, bytes: Array(s.utf8), halfClose: halfClose)
        }
        switch rng.below(12) {
        case 0:
            return Request(kind: "random_bytes", bytes: rng.bytes(1 + rng.below(4096)), halfClose: true)
        case 1:
            let full = "GET /v1/token?profile=default HTTP/1.1\r\n\(host)Accept: application/json\r\n\r\n"
            let cut = 1 + rng.below(full.utf8.count - 2)
            return Request(kind: "truncated", bytes: Array(Array(full.utf8)[..<cut]), halfClose: true)
        case 2:
            let path = "/v1/token?profile=" + String(repeating: "a", count: 8_000 + rng.below(120_000))
            return text("GET \(path) HTTP/1.1\r\n\(host)\r\n", halfClose: true, kind: "oversized_request_line")
        case 3:
            if rng.below(2) == 0 {
                return text("GET /v1/token HTTP/1.1\r\n\(host)X-Big: \(String(repeating: "b", count: 17_000 + rng.below(60_000)))\r\n\r\n",
                    halfClose: true, kind: "oversized_header")
            }
            let many = (0..<(65 + rng.below(400))).map { "X-H\($0): v\r\n" }.joined()
            return text("GET /v1/token HTTP/1.1\r\n\(host)\(many)\r\n", halfClose: true, kind: "too_many_headers")
        case 4:
            let size = 16 * 1024 + 1 + rng.below(100_000)
            let body = String(repeating: "x", count: size)
            if rng.below(2) == 0 {
                return text("GET /v1/status HTTP/1.1\r\n\(host)Content-Length: \(size)\r\n\r\n\(body)", halfClose: true,
                    kind: "oversized_body")
            }
            return text("GET /v1/status HTTP/1.1\r\n\(host)Transfer-Encoding: chunked\r\n\r\n\(String(size, radix: 16))\r\n\(body)\r\n0\r\n\r\n",
                halfClose: true, kind: "oversized_chunked_body")
        case 5:
            let bad: [[UInt8]] = [[0xFF, 0xFE], [0xC0, 0xAF], [0xED, 0xA0, 0x80], [0xF8, 0x88, 0x80, 0x80, 0x80], [0x80], [0xE2, 0x82]]
            let junk = rng.pick(bad)
            var bytes = Array("GET /v1/token?profile=".utf8) + junk + Array(" HTTP/1.1\r\n\(host)X-Name: ".utf8)
            bytes += junk + Array("\r\n\r\n".utf8)
            if rng.below(2) == 0 { bytes = Array("GET /v1/".utf8) + junk + Array("token HTTP/1.1\r\n\(host)\r\n".utf8) }
            return Request(kind: "invalid_utf8", bytes: bytes, halfClose: true)
        case 6:
            let method = rng.pick(Self.wrongMethods)
            return text("\(method) \(rng.pick(Self.paths)) HTTP/1.1\r\n\(host)Content-Length: 0\r\n\r\n", halfClose: true,
                kind: "wrong_method")
        case 7:
            return text("GET \(rng.pick(Self.traversals)) HTTP/1.1\r\n\(host)\r\n", halfClose: true, kind: "proxy_traversal")
        case 8:
            let queries = [
                "min_valid=-1", "min_valid=99999999999999999999", "min_valid=abc", "profile=../../etc/passwd",
                "profile=%00", "profile=%ff%fe", "profile=" + String(repeating: "p", count: 2000), "profile=a&profile=b",
                "format=%0d%0aSet-Cookie:x", "min_valid=1e9", "=&&&==", "profile",
            ]
            return text("GET /v1/token?\(rng.pick(queries)) HTTP/1.1\r\n\(host)\r\n", halfClose: true, kind: "bad_query")
        case 9:
            let framings = [
                "GET /v1/token HTTP/1.1\r\n\(host)Content-Length: 5\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\nGET /v1/status HTTP/1.1\r\n\r\n",
                "GET /v1/token HTTP/1.1\r\n\(host)Content-Length: 1\r\nContent-Length: 2\r\n\r\nab",
                "GET /v1/token HTTP/1.1\r\n\(host)Transfer-Encoding: chunked\r\n\r\nzz\r\n\r\n",
                "GET /v1/token HTTP/1.1\n\(host)\n\n", "GET /v1/token HTTP/1.1\r\nX-A: a\r\n b\r\n\r\n",
                "GET /v1/token HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n", "GET /v1/token HTTP/9.9\r\n\r\n",
                "GET /v1/token\r\n\r\n", "GET  /v1/token  HTTP/1.1\r\n\r\n", "\r\n\r\n\r\n",
                "GET /v1/token HTTP/1.1\r\nX-Inject: a\rb\r\n\r\n", "GET /v1/token HTTP/1.0\r\nContent-Length: -1\r\n\r\n",
            ]
            return text(rng.pick(framings), halfClose: true, kind: "bad_framing")
        case 10:
            // A valid request, then garbage on the same connection.
            return Request(
                kind: "pipelined_then_garbage",
                bytes: Array("GET /healthz HTTP/1.1\r\n\(host)\r\n".utf8) + rng.bytes(1 + rng.below(512)), halfClose: true)
        default:
            // A binary-looking request line: control characters in every field.
            var bytes = Array("GET /v1/token".utf8) + rng.bytes(1 + rng.below(64)).map { $0 & 0x1F } + Array(" HTTP/1.1\r\n\r\n".utf8)
            if rng.below(2) == 0 { bytes = rng.bytes(3).map { $0 & 0x7F } + Array(" / HTTP/1.1\r\n\r\n".utf8) }
            return Request(kind: "control_chars", bytes: bytes, halfClose: true)
        }
    }
}
