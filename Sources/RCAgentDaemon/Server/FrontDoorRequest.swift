/// The one request shape ``FrontDoor`` reads itself: `GET /v1/token…` over HTTP/1.1, with a
/// complete head in the bytes at hand, within the server's header limits, and nothing in it that
/// NIO's parser and the router might read otherwise. Anything else is not parsed further: NIO and
/// the router get those bytes and answer them as they would have (including every error).
enum FrontDoorRequest {
    /// The request at the start of `bytes` and its length in bytes; nil: not one the front door
    /// answers (another request, an incomplete head, anything unusual).
    static func parse(_ bytes: UnsafeRawBufferPointer, limits: AgentServerLimits) -> (TokenFastPath.Request, Int)? {
        let count = bytes.count
        guard count > requestStart.count, bytes.starts(with: requestStart) else { return nil }
        // The request target: visible ASCII up to the space.
        var index = 4
        while index < count, bytes[index] != space {
            guard (0x21...0x7E).contains(bytes[index]) else { return nil }
            index += 1
        }
        let target = 4..<index
        guard count - index >= version.count, UnsafeRawBufferPointer(rebasing: bytes[index...]).starts(with: version)
        else { return nil }
        index += version.count
        let fieldsStart = index
        var fields = 0
        var connection: Range<Int>?
        var accept: Range<Int>?
        var host = false
        var contentLength = false
        while true {
            guard index + 1 < count else { return nil }
            if bytes[index] == cr {
                guard bytes[index + 1] == lf else { return nil }
                index += 2
                break
            }
            fields += 1
            guard fields <= limits.maximumHeaderCount else { return nil }
            let nameStart = index
            while index < count, isTokenCharacter(bytes[index]) { index += 1 }
            guard index < count, index > nameStart, bytes[index] == colon else { return nil }
            let name = nameStart..<index
            index += 1
            while index < count, bytes[index] == space || bytes[index] == tab { index += 1 }
            let valueStart = index
            while index < count, bytes[index] != cr {
                guard (0x20...0x7E).contains(bytes[index]) || bytes[index] == tab else { return nil }
                index += 1
            }
            guard index + 1 < count, bytes[index + 1] == lf else { return nil }
            var valueEnd = index
            while valueEnd > valueStart, bytes[valueEnd - 1] == space || bytes[valueEnd - 1] == tab { valueEnd -= 1 }
            let value = valueStart..<valueEnd
            index += 2
            // NIO counts the target with the fields against the limit (the lines' bytes are more).
            guard target.count + index - fieldsStart <= limits.maximumHeaderBytes else { return nil }
            // A field that may appear once and matters, seen twice, or one that changes how the
            // request is framed or the connection handled: the router's.
            if equalsIgnoringCase(bytes, name, "connection") {
                guard connection == nil else { return nil }
                connection = value
            } else if equalsIgnoringCase(bytes, name, "accept") {
                guard accept == nil else { return nil }
                accept = value
            } else if equalsIgnoringCase(bytes, name, "host") {
                guard !host else { return nil }
                host = true
            } else if equalsIgnoringCase(bytes, name, "content-length") {
                guard !contentLength, value.count == 1, bytes[value.lowerBound] == UInt8(ascii: "0") else { return nil }
                contentLength = true
            } else if equalsIgnoringCase(bytes, name, "expect") || equalsIgnoringCase(bytes, name, "transfer-encoding")
                || equalsIgnoringCase(bytes, name, "upgrade") || equalsIgnoringCase(bytes, name, "proxy-connection")
            {
                // llhttp reads `Proxy-Connection` as `Connection`.
                return nil
            }
        }
        let text = { (range: Range<Int>) in String(decoding: UnsafeRawBufferPointer(rebasing: bytes[range]), as: UTF8.self) }
        guard
            let request = TokenFastPath.request(
                path: text(target), connection: connection.map(text), accept: accept.map(text))
        else { return nil }
        return (request, index)
    }

    private static let requestStart = Array("GET /v1/token".utf8)
    private static let version = Array(" HTTP/1.1\r\n".utf8)
    private static let space = UInt8(ascii: " ")
    private static let tab = UInt8(ascii: "\t")
    private static let colon = UInt8(ascii: ":")
    private static let cr = UInt8(ascii: "\r")
    private static let lf = UInt8(ascii: "\n")

    /// RFC 9110 `tchar`, by byte.
    private static let tokenCharacters: [Bool] = (0...255).map { byte in
        let byte = UInt8(byte)
        return (UInt8(ascii: "a")...UInt8(ascii: "z")).contains(byte) || (UInt8(ascii: "A")...UInt8(ascii: "Z")).contains(byte)
            || (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(byte) || "!#$%&'*+-.^_`|~".utf8.contains(byte)
    }

    private static func isTokenCharacter(_ byte: UInt8) -> Bool { tokenCharacters[Int(byte)] }

    /// True when `bytes[range]` is `lowercase` in any case (`lowercase` is ASCII lowercase).
    private static func equalsIgnoringCase(_ bytes: UnsafeRawBufferPointer, _ range: Range<Int>, _ lowercase: StaticString) -> Bool {
        guard range.count == lowercase.utf8CodeUnitCount else { return false }
        let expected = UnsafeBufferPointer(start: lowercase.utf8Start, count: lowercase.utf8CodeUnitCount)
        for (offset, byte) in expected.enumerated() {
            let actual = bytes[range.lowerBound + offset]
            let folded = (UInt8(ascii: "A")...UInt8(ascii: "Z")).contains(actual) ? actual | 0x20 : actual
            guard folded == byte else { return false }
        }
        return true
    }
}
