import Foundation

/// A short, secret-free excerpt of a response body for error messages.
public enum ResponseExcerpt {
    /// Longest excerpt, in characters.
    public static let limit = 200

    /// Excerpt of `body`: terminal escape sequences, control and bidi-override characters and tags
    /// stripped, whitespace collapsed, anything token-like and every `redacting` value replaced by
    /// `<redacted>`, cut to ``limit`` characters. The one place tenant text is made safe to print.
    public static func make(_ body: [UInt8], redacting: [String] = []) -> String {
        let text = String(decoding: body.prefix(64 * 1024), as: UTF8.self)
        return clean(text, redacting: redacting)
    }

    /// ``make(_:redacting:)`` for a string.
    public static func clean(_ text: String, redacting: [String] = []) -> String {
        var text = withoutTerminalControls(text)
        text = text.replacingOccurrences(of: "<[^>]*>", with: " ", options: .regularExpression)
        for value in redacting where value.count >= 4 {
            text = text.replacingOccurrences(of: value, with: "<redacted>")
        }
        // JSON fields that carry credentials, whatever their value looks like.
        text = text.replacingOccurrences(
            of: #"("(access_token|refresh_token|token|client_secret|secret|password)"\s*:\s*)"[^"]*""#,
            with: "$1\"<redacted>\"", options: [.regularExpression, .caseInsensitive])
        // Basic/Bearer credentials and long opaque runs (tokens, base64 blobs).
        text = text.replacingOccurrences(
            of: #"(?i)\b(basic|bearer)\s+[A-Za-z0-9._~+/=-]+"#, with: "$1 <redacted>", options: .regularExpression)
        text = text.replacingOccurrences(
            of: #"[A-Za-z0-9_~+=-]{32,}"#, with: "<redacted>", options: .regularExpression)
        text = text.components(separatedBy: .whitespacesAndNewlines).filter { !$0.isEmpty }.joined(separator: " ")
        if text.count > limit { text = String(text.prefix(limit - 1)) + "…" }
        return text
    }

    /// `text` without what a terminal would act on instead of print: ANSI escape sequences (CSI,
    /// OSC up to BEL or ST, two-character ones) are removed; every other control character (C0, DEL,
    /// C1 such as U+009B) and the bidi overrides/isolates become a space.
    static func withoutTerminalControls(_ text: String) -> String {
        var text = text.replacingOccurrences(
            of: "\u{1B}\\[[0-?]*[ -/]*[@-~]|\u{1B}\\][^\u{07}\u{1B}]*(\u{07}|\u{1B}\\\\)?|\u{1B}[ -/]*[0-~]?",
            with: "", options: .regularExpression)
        text.unicodeScalars = String.UnicodeScalarView(text.unicodeScalars.map { scalar in
            let value = scalar.value
            let control = value < 0x20 || (0x7F...0x9F).contains(value)
            let bidi = (0x202A...0x202E).contains(value) || (0x2066...0x2069).contains(value)
                || value == 0x200E || value == 0x200F || value == 0x061C
            return control || bidi ? " " : scalar
        })
        return text
    }

    /// The `message` field of a JSON error body (`{"message": …}`), cleaned; nil when there is none.
    public static func jsonMessage(_ body: [UInt8], redacting: [String] = []) -> String? {
        guard let object = try? JSONSerialization.jsonObject(with: Data(body)) as? [String: Any],
            let message = object["message"] as? String, !message.isEmpty
        else { return nil }
        return clean(message, redacting: redacting)
    }
}
