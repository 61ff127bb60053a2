import FoundationEssentials

#if canImport(Glibc)
import Glibc
#endif

// The few text helpers full Foundation would give (CharacterSet, trimming, NSString paths,
// percent decoding, String(format:)); the product links FoundationEssentials only, so no ICU
// (docs/ARCHITECTURE.md). Each keeps the behaviour of the Foundation call it replaces.

extension Unicode.Scalar {
    /// `CharacterSet.controlCharacters`: general categories Cc and Cf (CharacterSet also holds
    /// most of plane 14 above U+E0100, unassigned or variation selectors; these are not).
    package var isControlOrFormat: Bool {
        switch properties.generalCategory {
        case .control, .format: true
        default: false
        }
    }

    /// `CharacterSet.whitespaces`: general category Zs, tab, and U+200B (ZERO WIDTH SPACE, which
    /// CharacterSet counts though Unicode made it Cf).
    package var isBlank: Bool {
        value == 0x09 || value == 0x200B || properties.generalCategory == .spaceSeparator
    }

    /// `CharacterSet.whitespacesAndNewlines`: ``isBlank`` and U+000A–U+000D, U+0085, U+2028, U+2029.
    package var isBlankOrNewline: Bool {
        isBlank || (0x0A...0x0D).contains(value) || value == 0x85 || value == 0x2028 || value == 0x2029
    }

    /// `CharacterSet.alphanumerics`: general categories L*, M* and N*, by the Unicode version of
    /// the Swift runtime (CharacterSet's tables are older: letters added since are alphanumeric here).
    package var isLetterMarkOrNumber: Bool {
        switch properties.generalCategory {
        case .uppercaseLetter, .lowercaseLetter, .titlecaseLetter, .modifierLetter, .otherLetter,
            .nonspacingMark, .spacingMark, .enclosingMark, .decimalNumber, .letterNumber, .otherNumber:
            true
        default: false
        }
    }
}

extension StringProtocol {
    /// `trimmingCharacters(in:)`: `self` without leading and trailing scalars for which `drop` holds.
    package func trimming(_ drop: (Unicode.Scalar) -> Bool) -> String {
        let scalars = unicodeScalars
        guard let first = scalars.firstIndex(where: { !drop($0) }),
            let last = scalars.lastIndex(where: { !drop($0) })
        else { return "" }
        return String(String.UnicodeScalarView(scalars[first...last]))
    }

    /// `trimmingCharacters(in: .whitespaces)`.
    package func trimmingBlanks() -> String { trimming(\.isBlank) }

    /// `trimmingCharacters(in: .whitespacesAndNewlines)`.
    package func trimmingBlanksAndNewlines() -> String { trimming(\.isBlankOrNewline) }

    /// `self` without trailing scalars for which `drop` holds.
    package func trimmingTrailing(_ drop: (Unicode.Scalar) -> Bool) -> String {
        let scalars = unicodeScalars
        guard let last = scalars.lastIndex(where: { !drop($0) }) else { return "" }
        return String(String.UnicodeScalarView(scalars[...last]))
    }

    /// `padding(toLength:withPad: " ", startingAt: 0)` in characters: cut to `width` or filled
    /// with spaces up to it.
    package func padded(to width: Int) -> String {
        count >= width ? String(prefix(width)) : String(self) + String(repeating: " ", count: width - count)
    }

    /// True when `self` and `other` are equal ignoring ASCII case (HTTP header names).
    package func equalsIgnoringASCIICase(_ other: some StringProtocol) -> Bool {
        utf8.count == other.utf8.count
            && zip(utf8, other.utf8).allSatisfy { Self.asciiLower($0) == Self.asciiLower($1) }
    }

    private static func asciiLower(_ byte: UInt8) -> UInt8 {
        (UInt8(ascii: "A")...UInt8(ascii: "Z")).contains(byte) ? byte + 32 : byte
    }

    /// `removingPercentEncoding`: every `%XX` decoded; nil when a `%` is not followed by two hex
    /// digits or the result is not UTF-8.
    package var removingPercentEscapes: String? {
        var bytes: [UInt8] = []
        bytes.reserveCapacity(utf8.count)
        var iterator = utf8.makeIterator()
        while let byte = iterator.next() {
            guard byte == UInt8(ascii: "%") else {
                bytes.append(byte)
                continue
            }
            guard let high = iterator.next().flatMap(Self.hexValue), let low = iterator.next().flatMap(Self.hexValue)
            else { return nil }
            bytes.append(high << 4 | low)
        }
        return String(validating: bytes, as: UTF8.self)
    }

    private static func hexValue(_ byte: UInt8) -> UInt8? {
        switch byte {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): byte - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): byte - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): byte - UInt8(ascii: "A") + 10
        default: nil
        }
    }
}

/// `NSString`'s path helpers for slash-separated paths (runs of `/` count as one, as there).
package enum PathText {
    /// `deletingLastPathComponent`: `/a/b` → `/a`, `/a//b/` → `/a`, `/a` → `/`, `a` → ``.
    package static func directory(of path: String) -> String {
        let trimmed = normalized(path)
        guard trimmed != "/", let slash = trimmed.lastIndex(of: "/") else { return trimmed == "/" ? "/" : "" }
        return slash == trimmed.startIndex ? "/" : String(trimmed[..<slash])
    }

    /// `lastPathComponent`: `/a/b` → `b`, `/` → `/`.
    package static func name(of path: String) -> String {
        let trimmed = normalized(path)
        guard trimmed != "/", let slash = trimmed.lastIndex(of: "/") else { return trimmed }
        return String(trimmed[trimmed.index(after: slash)...])
    }

    /// `path` with each run of slashes made one, and no trailing slash (but `/` itself).
    private static func normalized(_ path: String) -> String {
        var out = ""
        for character in path where !(character == "/" && out.hasSuffix("/")) { out.append(character) }
        if out.count > 1, out.hasSuffix("/") { out.removeLast() }
        return out
    }
}

/// `String(format:)` for the two formats the agent prints.
package enum CFormat {
    /// `%.1f` (C rounding, as `printf`).
    package static func oneDecimal(_ value: Double) -> String {
        var buffer = [CChar](repeating: 0, count: 64)
        _ = withVaList([value]) { vsnprintf(&buffer, buffer.count, "%.1f", $0) }
        return String(decoding: buffer.prefix { $0 != 0 }.map { UInt8(bitPattern: $0) }, as: UTF8.self)
    }

    /// `%04X`: upper-case hex, at least four digits.
    package static func hex4(_ value: UInt32) -> String {
        let digits = String(value, radix: 16, uppercase: true)
        return String(repeating: "0", count: max(0, 4 - digits.count)) + digits
    }
}

/// The C library's text for `errno` (what `localizedDescription` of a POSIX error said).
package func errnoText(_ code: Int32 = errno) -> String { String(cString: strerror(code)) }
