import FoundationEssentials

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
        text = replacing(#"<[^>]*>"#, in: text) { _ in " " }
        for value in redacting where value.count >= 4 {
            text = text.replacing(value, with: "<redacted>")
        }
        // JSON fields that carry credentials, whatever their value looks like.
        text = replacing(
            #"(?i)("(access_token|refresh_token|token|client_secret|secret|password)"\s*:\s*)"[^"]*""#, in: text
        ) { $0 + "\"<redacted>\"" }
        // Basic/Bearer credentials and long opaque runs (tokens, base64 blobs).
        text = replacing(#"(?i)\b(basic|bearer)\s+[A-Za-z0-9._~+/=-]+"#, in: text) { $0 + " <redacted>" }
        text = replacing(#"[A-Za-z0-9_~+=-]{32,}"#, in: text) { _ in "<redacted>" }
        text = text.unicodeScalars.split(whereSeparator: \.isBlankOrNewline).map { String($0) }.joined(separator: " ")
        if text.count > limit { text = String(text.prefix(limit - 1)) + "…" }
        return text
    }

    /// `text` without what a terminal would act on instead of print: ANSI escape sequences (CSI,
    /// OSC up to BEL or ST, two-character ones) are removed; every other control character (C0, DEL,
    /// C1 such as U+009B) and the bidi overrides/isolates become a space.
    static func withoutTerminalControls(_ text: String) -> String {
        var text = replacing(
            "\u{1B}\\[[0-?]*[ -/]*[@-~]|\u{1B}\\][^\u{07}\u{1B}]*(\u{07}|\u{1B}\\\\)?|\u{1B}[ -/]*[0-~]?", in: text
        ) { _ in "" }
        text.unicodeScalars = String.UnicodeScalarView(text.unicodeScalars.map { scalar in
            let value = scalar.value
            let control = value < 0x20 || (0x7F...0x9F).contains(value)
            let bidi = (0x202A...0x202E).contains(value) || (0x2066...0x2069).contains(value)
                || value == 0x200E || value == 0x200F || value == 0x061C
            return control || bidi ? " " : scalar
        })
        return text
    }

    /// Every match of `pattern` in `text` replaced by `replacement(group 1)`, with the matching
    /// rules of the `NSRegularExpression` this replaced: Unicode scalars (not characters) and simple
    /// word boundaries.
    private static func replacing(_ pattern: String, in text: String, with replacement: (String) -> String) -> String {
        guard let regex = try? Regex(pattern).matchingSemantics(.unicodeScalar).wordBoundaryKind(.simple) else {
            return text
        }
        return text.replacing(regex) { match in
            replacement(match.output.count > 1 ? match.output[1].substring.map(String.init) ?? "" : "")
        }
    }

    /// The `message` field of a JSON error body (`{"message": …}`), cleaned; nil when there is none.
    public static func jsonMessage(_ body: [UInt8], redacting: [String] = []) -> String? {
        guard let message = JSONValue(parsing: body)?["message"]?.string, !message.isEmpty
        else { return nil }
        return clean(message, redacting: redacting)
    }
}
