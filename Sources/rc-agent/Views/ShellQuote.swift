import Foundation

/// Quoting for lines a shell evaluates (`eval "$(rc-agent start)"`).
enum ShellQuote {
    /// `text` as one shell word: unchanged when it holds only safe characters, else single-quoted.
    static func quote(_ text: String) -> String {
        let safe = CharacterSet(charactersIn: "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789/._-+:@%,=")
        if !text.isEmpty, text.unicodeScalars.allSatisfy({ safe.contains($0) }) { return text }
        return "'" + text.replacingOccurrences(of: "'", with: "'\\''") + "'"
    }
}
