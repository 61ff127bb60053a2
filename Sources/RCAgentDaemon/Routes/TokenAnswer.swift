import HTTPTypes
import NIOCore
import RCAgentCore

/// The status line, headers and body of a token answer: built here for both the router
/// (``TokenRoutes``) and the fast path (``TokenFastPathHandler``), so the two send the same bytes.
struct TokenAnswer: Sendable {
    var head: HTTPResponse
    var body: ByteBuffer

    /// `response` as one line of JSON and a newline.
    static func json(_ response: TokenResponse) throws -> TokenAnswer {
        var data = try WireJSON.encode(response)
        data.append(UInt8(ascii: "\n"))
        return TokenAnswer(contentType: "application/json", body: ByteBuffer(bytes: data))
    }

    /// The bare token and a newline (`format=text`).
    static func text(_ token: Secret) -> TokenAnswer {
        TokenAnswer(contentType: "text/plain; charset=utf-8", body: ByteBuffer(string: token.reveal() + "\n"))
    }

    /// The whole response as NIO's HTTP/1.1 encoder writes it: status line, the fields in order,
    /// an empty line, the body.
    var wire: [UInt8] {
        var bytes = Array("HTTP/1.1 \(head.status.code) \(head.status.reasonPhrase)\r\n".utf8)
        for field in head.headerFields {
            bytes += field.name.rawName.utf8
            bytes += ": ".utf8
            bytes += field.value.utf8
            bytes += "\r\n".utf8
        }
        bytes += "\r\n".utf8
        bytes += body.readableBytesView
        return bytes
    }

    private init(contentType: String, body: ByteBuffer) {
        head = HTTPResponse(
            status: .ok,
            headerFields: [
                .contentType: contentType, .contentLength: String(body.readableBytes), .cacheControl: "no-store",
            ])
        self.body = body
    }
}
