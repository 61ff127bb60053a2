/// A TOML 1.0 value as ``TOMLReader`` reads it.
package enum TOMLValue: Sendable, Equatable {
    case string(String)
    case integer(Int)
    case float(Double)
    case boolean(Bool)
    /// An offset or local date-time, date or time, kept as written: the config has no date keys,
    /// and reading them as dates would need `Calendar` (full Foundation and ICU).
    case dateTime(String)
    case array([TOMLValue])
    case table(TOMLTable)

    package var string: String? { if case .string(let value) = self { value } else { nil } }
    package var int: Int? { if case .integer(let value) = self { value } else { nil } }
    package var double: Double? { if case .float(let value) = self { value } else { nil } }
    package var bool: Bool? { if case .boolean(let value) = self { value } else { nil } }
    package var table: TOMLTable? { if case .table(let value) = self { value } else { nil } }
    package var array: [TOMLValue]? { if case .array(let value) = self { value } else { nil } }
}

/// A TOML table: its keys in the order the document gives them.
package struct TOMLTable: Sendable, Equatable {
    package private(set) var keys: [String] = []
    private var values: [String: TOMLValue] = [:]

    package init() {}

    package subscript(key: String) -> TOMLValue? { values[key] }

    fileprivate mutating func append(_ key: String, _ value: TOMLValue) {
        keys.append(key)
        values[key] = value
    }
}

/// Why a TOML document does not parse, and where (1-based line and column, in characters).
package struct TOMLParseError: Error, Sendable, Equatable, CustomStringConvertible {
    package let line: Int
    package let column: Int
    package let reason: String

    package var description: String { "\(reason) (column \(column))" }
}

/// Reads TOML 1.0 documents with the standard library only (no Foundation, no C++ parser).
///
/// Dates and times are checked for their shape and kept as text (``TOMLValue/dateTime(_:)``).
package enum TOMLReader {
    /// Parses `text` into its root table.
    package static func parse(_ text: String) throws(TOMLParseError) -> TOMLTable {
        var parser = Parser(Array(text.utf8))
        return try parser.document()
    }
}

/// The parser's mutable tree: tables keep how they were made, which decides what may extend them.
private final class Node {
    enum Entry {
        case value(TOMLValue)
        case table(Node)
        case tableArray([Node])
    }

    var keys: [String] = []
    var entries: [String: Entry] = [:]
    /// Made by a `[header]` of its own (a second one is a duplicate).
    var byHeader = false
    /// Made by a dotted key (`a.b = 1`): no header may open it later.
    var byDottedKey = false
    /// An inline table: closed once its `}` is read.
    var sealed = false

    func set(_ key: String, _ entry: Entry) {
        if entries[key] == nil { keys.append(key) }
        entries[key] = entry
    }

    func value() -> TOMLTable {
        var table = TOMLTable()
        for key in keys {
            switch entries[key]! {
            case .value(let value): table.append(key, value)
            case .table(let node): table.append(key, .table(node.value()))
            case .tableArray(let nodes): table.append(key, .array(nodes.map { .table($0.value()) }))
            }
        }
        return table
    }
}

private struct Parser {
    let bytes: [UInt8]
    var index = 0
    var depth = 0
    static let maxDepth = 100

    init(_ bytes: [UInt8]) {
        self.bytes = bytes
        if bytes.starts(with: [0xEF, 0xBB, 0xBF]) { index = 3 }
    }

    // MARK: Document

    mutating func document() throws(TOMLParseError) -> TOMLTable {
        try rejectControlCharacters()
        let root = Node()
        var current = root
        while true {
            skipBlanks()
            guard let byte = peek() else { break }
            switch byte {
            case UInt8(ascii: "#"), UInt8(ascii: "\n"), UInt8(ascii: "\r"):
                try endOfLine()
            case UInt8(ascii: "["):
                current = try header(root: root)
                try endOfLine()
            default:
                try keyValue(into: current)
                try endOfLine()
            }
        }
        return root.value()
    }

    /// TOML allows no control characters but tab and line breaks (a CR only before an LF), anywhere.
    func rejectControlCharacters() throws(TOMLParseError) {
        for (at, byte) in bytes.enumerated() where byte < 0x20 || byte == 0x7F {
            if byte == UInt8(ascii: "\t") || byte == UInt8(ascii: "\n") { continue }
            if byte == UInt8(ascii: "\r"), at + 1 < bytes.count, bytes[at + 1] == UInt8(ascii: "\n") { continue }
            throw error(
                "contains the control character U+\(CFormat.hex4(UInt32(byte))); TOML allows only tabs and line breaks",
                at: at)
        }
    }

    /// `[a.b]` or `[[a.b]]`: the table that the following keys go into.
    mutating func header(root: Node) throws(TOMLParseError) -> Node {
        let start = index
        index += 1
        let isArray = peek() == UInt8(ascii: "[")
        if isArray { index += 1 }
        skipBlanks()
        let path = try key()
        skipBlanks()
        guard consume("]"), !isArray || consume("]") else {
            throw error(isArray ? "expected ']]' to close the table header" : "expected ']' to close the table header")
        }
        var node = root
        for part in path.dropLast() {
            switch node.entries[part] {
            case nil:
                let child = Node()
                node.set(part, .table(child))
                node = child
            case .table(let child) where !child.sealed:
                node = child
            case .tableArray(let children):
                node = children[children.count - 1]
            default:
                throw error("'\(path.joined(separator: "."))': '\(part)' is already a value, not a table", at: start)
            }
        }
        let last = path[path.count - 1]
        let name = path.joined(separator: ".")
        if isArray {
            let child = Node()
            child.byHeader = true
            switch node.entries[last] {
            case nil: node.set(last, .tableArray([child]))
            case .tableArray:
                // Out of the dictionary first, so the append does not copy the array each time.
                guard case .tableArray(var children)? = node.entries.removeValue(forKey: last) else { break }
                children.append(child)
                node.entries[last] = .tableArray(children)
            default: throw error("'\(name)' is already defined, not as an array of tables", at: start)
            }
            return child
        }
        switch node.entries[last] {
        case nil:
            let child = Node()
            child.byHeader = true
            node.set(last, .table(child))
            return child
        case .table(let child) where !child.byHeader && !child.byDottedKey && !child.sealed:
            child.byHeader = true
            return child
        default:
            throw error("duplicate table [\(name)]", at: start)
        }
    }

    /// `key = value` into `table`, dotted keys making (or extending) tables of their own.
    mutating func keyValue(into table: Node) throws(TOMLParseError) {
        let start = index
        let path = try key()
        // The parts of the keys of enclosing inline tables count too: the tree's depth is bounded
        // as a whole, not per key or per level.
        guard depth + path.count <= Self.maxDepth else { throw error("the key is nested too deeply", at: start) }
        depth += path.count
        defer { depth -= path.count }
        skipBlanks()
        guard consume("=") else { throw error("expected '=' after the key '\(path.joined(separator: "."))'") }
        skipBlanks()
        let value = try value()
        var node = table
        for part in path.dropLast() {
            switch node.entries[part] {
            case nil:
                let child = Node()
                child.byDottedKey = true
                node.set(part, .table(child))
                node = child
            case .table(let child) where child.byDottedKey && !child.sealed:
                node = child
            default:
                throw error("'\(path.joined(separator: "."))': '\(part)' is already defined", at: start)
            }
        }
        let last = path[path.count - 1]
        guard node.entries[last] == nil else {
            throw error("duplicate key '\(path.joined(separator: "."))'", at: start)
        }
        switch value {
        case .table(let inline): node.set(last, .table(inline))
        case .value(let plain): node.set(last, .value(plain))
        }
    }

    /// Blanks, then a comment, then the end of the line or of the document.
    mutating func endOfLine() throws(TOMLParseError) {
        skipBlanks()
        if peek() == UInt8(ascii: "#") {
            while let byte = peek(), byte != UInt8(ascii: "\n"), byte != UInt8(ascii: "\r") { index += 1 }
        }
        guard let byte = peek() else { return }
        if byte == UInt8(ascii: "\n") { index += 1; return }
        if byte == UInt8(ascii: "\r"), peek(1) == UInt8(ascii: "\n") { index += 2; return }
        throw error("expected the end of the line, found \(found())")
    }

    // MARK: Keys

    /// A bare, quoted or dotted key, as its parts.
    mutating func key() throws(TOMLParseError) -> [String] {
        var parts: [String] = []
        while true {
            guard parts.count < Self.maxDepth else { throw error("the key has too many parts") }
            skipBlanks()
            switch peek() {
            case UInt8(ascii: "\""):
                if peek(1) == UInt8(ascii: "\""), peek(2) == UInt8(ascii: "\"") { throw error("a key cannot be a multi-line string") }
                parts.append(try basicString())
            case UInt8(ascii: "'"):
                if peek(1) == UInt8(ascii: "'"), peek(2) == UInt8(ascii: "'") { throw error("a key cannot be a multi-line string") }
                parts.append(try literalString())
            default:
                let start = index
                while let byte = peek(), Self.isBare(byte) { index += 1 }
                guard index > start else {
                    throw error("expected a key (letters, digits, '_', '-' or a quoted string), found \(found())")
                }
                parts.append(String(decoding: bytes[start..<index], as: UTF8.self))
            }
            skipBlanks()
            guard consume(".") else { return parts }
        }
    }

    static func isBare(_ byte: UInt8) -> Bool {
        switch byte {
        case UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "0")...UInt8(ascii: "9"),
            UInt8(ascii: "_"), UInt8(ascii: "-"):
            true
        default:
            false
        }
    }

    // MARK: Values

    enum Parsed {
        case value(TOMLValue)
        case table(Node)
    }

    mutating func value() throws(TOMLParseError) -> Parsed {
        guard let byte = peek() else { throw error("expected a value, found the end of the document") }
        switch byte {
        case UInt8(ascii: "\""):
            if peek(1) == UInt8(ascii: "\""), peek(2) == UInt8(ascii: "\"") { return .value(.string(try multiLineString(quote: byte))) }
            return .value(.string(try basicString()))
        case UInt8(ascii: "'"):
            if peek(1) == UInt8(ascii: "'"), peek(2) == UInt8(ascii: "'") { return .value(.string(try multiLineString(quote: byte))) }
            return .value(.string(try literalString()))
        case UInt8(ascii: "["):
            return .value(try array())
        case UInt8(ascii: "{"):
            return .table(try inlineTable())
        default:
            return .value(try scalar())
        }
    }

    mutating func nested<T>(_ body: (inout Parser) throws(TOMLParseError) -> T) throws(TOMLParseError) -> T {
        guard depth < Self.maxDepth else { throw error("arrays and inline tables are nested too deeply") }
        depth += 1
        defer { depth -= 1 }
        return try body(&self)
    }

    mutating func array() throws(TOMLParseError) -> TOMLValue {
        try nested { (parser: inout Parser) throws(TOMLParseError) -> TOMLValue in
            parser.index += 1
            var items: [TOMLValue] = []
            while true {
                try parser.skipBlanksCommentsAndLines()
                if parser.consume("]") { return .array(items) }
                switch try parser.value() {
                case .value(let value): items.append(value)
                case .table(let node): items.append(.table(node.value()))
                }
                try parser.skipBlanksCommentsAndLines()
                if parser.consume(",") { continue }
                if parser.consume("]") { return .array(items) }
                throw parser.error("expected ',' or ']' in the array, found \(parser.found())")
            }
        }
    }

    mutating func inlineTable() throws(TOMLParseError) -> Node {
        try nested { (parser: inout Parser) throws(TOMLParseError) -> Node in
            parser.index += 1
            let node = Node()
            parser.skipBlanks()
            if parser.consume("}") {
                node.sealed = true
                return node
            }
            while true {
                parser.skipBlanks()
                try parser.keyValue(into: node)
                parser.skipBlanks()
                if parser.consume(",") { continue }
                if parser.consume("}") {
                    node.sealed = true
                    Self.sealDottedTables(node)
                    return node
                }
                throw parser.error("expected ',' or '}' in the inline table (all on one line), found \(parser.found())")
            }
        }
    }

    static func sealDottedTables(_ node: Node) {
        for case .table(let child) in node.entries.values where !child.sealed {
            child.sealed = true
            sealDottedTables(child)
        }
    }

    /// Booleans, numbers, dates and times: a run of bare characters (a date may have one space before its time).
    mutating func scalar() throws(TOMLParseError) -> TOMLValue {
        let start = index
        while let byte = peek(), Self.isBare(byte) || byte == UInt8(ascii: "+") || byte == UInt8(ascii: ".") || byte == UInt8(ascii: ":") {
            index += 1
        }
        if index - start == 10, peek() == UInt8(ascii: " "), let next = peek(1), Self.isDigit(next), bytes[start + 4] == UInt8(ascii: "-") {
            index += 1
            while let byte = peek(), Self.isBare(byte) || byte == UInt8(ascii: "+") || byte == UInt8(ascii: ".") || byte == UInt8(ascii: ":") {
                index += 1
            }
        }
        let token = String(decoding: bytes[start..<index], as: UTF8.self)
        if token.isEmpty { throw error("expected a value, found \(found())") }
        switch token {
        case "true": return .boolean(true)
        case "false": return .boolean(false)
        case "inf", "+inf": return .float(.infinity)
        case "-inf": return .float(-.infinity)
        case "nan", "+nan", "-nan": return .float(.nan)
        default: break
        }
        let utf8 = Array(token.utf8)
        if utf8.count >= 5, utf8[4] == UInt8(ascii: "-"), utf8[0..<4].allSatisfy(Self.isDigit) {
            guard Self.isDateTime(utf8) else { throw error("'\(token)' is not a valid date or time", at: start) }
            return .dateTime(token)
        }
        if utf8.count >= 3, utf8[2] == UInt8(ascii: ":"), utf8[0..<2].allSatisfy(Self.isDigit) {
            guard Self.isTime(utf8[...]) else { throw error("'\(token)' is not a valid time", at: start) }
            return .dateTime(token)
        }
        if let value = Self.integer(utf8) { return .integer(value) }
        if let value = Self.float(utf8) { return .float(value) }
        if Self.isDecimalInteger(utf8[...]) { throw error("the integer \(token) is out of range (64 bits)", at: start) }
        throw error("'\(token)' is not a value (strings need quotes)", at: start)
    }

    static func isDigit(_ byte: UInt8) -> Bool { byte >= UInt8(ascii: "0") && byte <= UInt8(ascii: "9") }

    /// Digits in `isDigit`, with single underscores only between two digits.
    static func isDigitRun(_ run: ArraySlice<UInt8>, _ isDigit: (UInt8) -> Bool) -> Bool {
        guard let first = run.first, let last = run.last, isDigit(first), isDigit(last) else { return false }
        var previousUnderscore = false
        for byte in run {
            if byte == UInt8(ascii: "_") {
                if previousUnderscore { return false }
                previousUnderscore = true
            } else {
                guard isDigit(byte) else { return false }
                previousUnderscore = false
            }
        }
        return true
    }

    /// An optional sign, then `0` or digits without a leading zero.
    static func isDecimalInteger(_ token: ArraySlice<UInt8>) -> Bool {
        var digits = token
        if let first = digits.first, first == UInt8(ascii: "+") || first == UInt8(ascii: "-") { digits = digits.dropFirst() }
        guard isDigitRun(digits, isDigit) else { return false }
        return digits.count == 1 || digits.first != UInt8(ascii: "0")
    }

    static func integer(_ token: [UInt8]) -> Int? {
        if token.count > 2, token[0] == UInt8(ascii: "0") {
            let radix: Int
            let isDigit: (UInt8) -> Bool
            switch token[1] {
            case UInt8(ascii: "x"):
                radix = 16
                isDigit = { Parser.isDigit($0) || ($0 | 0x20 >= UInt8(ascii: "a") && $0 | 0x20 <= UInt8(ascii: "f")) }
            case UInt8(ascii: "o"):
                radix = 8
                isDigit = { $0 >= UInt8(ascii: "0") && $0 <= UInt8(ascii: "7") }
            case UInt8(ascii: "b"):
                radix = 2
                isDigit = { $0 == UInt8(ascii: "0") || $0 == UInt8(ascii: "1") }
            default:
                return nil
            }
            guard isDigitRun(token[2...], isDigit) else { return nil }
            return Int(String(decoding: token[2...].filter { $0 != UInt8(ascii: "_") }, as: UTF8.self), radix: radix)
        }
        guard isDecimalInteger(token[...]) else { return nil }
        return Int(String(decoding: token.filter { $0 != UInt8(ascii: "_") }, as: UTF8.self))
    }

    /// An integer part, then a fraction, an exponent or both.
    static func float(_ token: [UInt8]) -> Double? {
        let exponentAt = token.firstIndex { $0 == UInt8(ascii: "e") || $0 == UInt8(ascii: "E") }
        let mantissa = token[..<(exponentAt ?? token.count)]
        let dot = mantissa.firstIndex(of: UInt8(ascii: "."))
        guard dot != nil || exponentAt != nil else { return nil }
        guard isDecimalInteger(mantissa[..<(dot ?? mantissa.endIndex)]) else { return nil }
        if let dot, !isDigitRun(mantissa[(dot + 1)...], isDigit) { return nil }
        if let exponentAt {
            var exponent = token[(exponentAt + 1)...]
            if let first = exponent.first, first == UInt8(ascii: "+") || first == UInt8(ascii: "-") { exponent = exponent.dropFirst() }
            guard isDigitRun(exponent, isDigit) else { return nil }
        }
        return Double(String(decoding: token.filter { $0 != UInt8(ascii: "_") }, as: UTF8.self))
    }

    /// `YYYY-MM-DD`, optionally followed by `T` (or a space) and a time, and an offset after that.
    static func isDateTime(_ token: [UInt8]) -> Bool {
        guard token.count >= 10, let year = number(token[0..<4]), token[4] == UInt8(ascii: "-"),
            let month = number(token[5..<7]), token[7] == UInt8(ascii: "-"), let day = number(token[8..<10]),
            (1...12).contains(month), (1...daysIn(month: month, year: year)).contains(day)
        else { return false }
        if token.count == 10 { return true }
        guard [UInt8(ascii: "T"), UInt8(ascii: "t"), UInt8(ascii: " ")].contains(token[10]) else { return false }
        var time = token[11...]
        if let last = time.last, last == UInt8(ascii: "Z") || last == UInt8(ascii: "z") {
            time = time.dropLast()
        } else if time.count > 6, [UInt8(ascii: "+"), UInt8(ascii: "-")].contains(time[time.endIndex - 6]) {
            let offset = time[(time.endIndex - 5)...]
            guard let hours = number(offset.prefix(2)), offset[offset.startIndex + 2] == UInt8(ascii: ":"),
                let minutes = number(offset.suffix(2)), hours < 24, minutes < 60
            else { return false }
            time = time.dropLast(6)
        }
        return isTime(time)
    }

    /// `HH:MM:SS` with an optional fraction.
    static func isTime(_ time: ArraySlice<UInt8>) -> Bool {
        guard time.count >= 8 else { return false }
        let base = time.startIndex
        guard let hours = number(time[base..<(base + 2)]), time[base + 2] == UInt8(ascii: ":"),
            let minutes = number(time[(base + 3)..<(base + 5)]), time[base + 5] == UInt8(ascii: ":"),
            let seconds = number(time[(base + 6)..<(base + 8)]), hours < 24, minutes < 60, seconds <= 60
        else { return false }
        let fraction = time[(base + 8)...]
        if fraction.isEmpty { return true }
        return fraction.count >= 2 && fraction.first == UInt8(ascii: ".") && fraction.dropFirst().allSatisfy(isDigit)
    }

    static func number(_ digits: ArraySlice<UInt8>) -> Int? {
        guard !digits.isEmpty, digits.allSatisfy(isDigit) else { return nil }
        return digits.reduce(0) { $0 * 10 + Int($1 - UInt8(ascii: "0")) }
    }

    static func daysIn(month: Int, year: Int) -> Int {
        switch month {
        case 2: year % 4 == 0 && (year % 100 != 0 || year % 400 == 0) ? 29 : 28
        case 4, 6, 9, 11: 30
        default: 31
        }
    }

    // MARK: Strings

    mutating func basicString() throws(TOMLParseError) -> String {
        index += 1
        var out: [UInt8] = []
        while true {
            guard let byte = peek(), byte != UInt8(ascii: "\n"), byte != UInt8(ascii: "\r") else {
                throw error("the string is not closed on its line (a '\"' is missing)")
            }
            if byte == UInt8(ascii: "\"") {
                index += 1
                return String(decoding: out, as: UTF8.self)
            }
            if byte == UInt8(ascii: "\\") {
                try escape(into: &out)
            } else {
                out.append(byte)
                index += 1
            }
        }
    }

    mutating func literalString() throws(TOMLParseError) -> String {
        index += 1
        let start = index
        while true {
            guard let byte = peek(), byte != UInt8(ascii: "\n"), byte != UInt8(ascii: "\r") else {
                throw error("the string is not closed on its line (a \"'\" is missing)")
            }
            if byte == UInt8(ascii: "'") {
                index += 1
                return String(decoding: bytes[start..<(index - 1)], as: UTF8.self)
            }
            index += 1
        }
    }

    /// `"""…"""` (escapes on) or `'''…'''` (escapes off); a CRLF inside reads as LF.
    mutating func multiLineString(quote: UInt8) throws(TOMLParseError) -> String {
        let escapes = quote == UInt8(ascii: "\"")
        index += 3
        skipFirstLineBreak()
        var out: [UInt8] = []
        while true {
            guard let byte = peek() else {
                let delimiter = String(decoding: [quote, quote, quote], as: UTF8.self)
                throw error("the multi-line string is not closed (a \(delimiter) is missing)")
            }
            if byte == quote, let quotes = try closingQuotes(quote) {
                out += Array(repeating: quote, count: quotes)
                return String(decoding: out, as: UTF8.self)
            }
            if escapes, byte == UInt8(ascii: "\\") {
                if !lineEndingBackslash() { try escape(into: &out) }
            } else if byte == UInt8(ascii: "\r") {
                out.append(UInt8(ascii: "\n"))
                index += 2
            } else {
                out.append(byte)
                index += 1
            }
        }
    }

    mutating func skipFirstLineBreak() {
        if peek() == UInt8(ascii: "\n") {
            index += 1
        } else if peek() == UInt8(ascii: "\r"), peek(1) == UInt8(ascii: "\n") {
            index += 2
        }
    }

    /// At a run of `quote`s: when it closes the string (3 to 5 of them; up to two quotes of content
    /// may come right before the closing three), moves past it and answers how many are content.
    mutating func closingQuotes(_ quote: UInt8) throws(TOMLParseError) -> Int? {
        var run = 0
        while peek(run) == quote { run += 1 }
        guard run >= 3 else { return nil }
        guard run <= 5 else { throw error("a multi-line string cannot hold three quotes in a row (escape one)", at: index + 3) }
        index += run
        return run - 3
    }

    /// `\` then blanks up to a line break: the break and all blanks and breaks after it go.
    mutating func lineEndingBackslash() -> Bool {
        var ahead = 1
        while let byte = peek(ahead), byte == UInt8(ascii: " ") || byte == UInt8(ascii: "\t") { ahead += 1 }
        guard peek(ahead) == UInt8(ascii: "\n") || (peek(ahead) == UInt8(ascii: "\r") && peek(ahead + 1) == UInt8(ascii: "\n")) else {
            return false
        }
        index += ahead
        while let byte = peek(), [UInt8(ascii: " "), UInt8(ascii: "\t"), UInt8(ascii: "\n"), UInt8(ascii: "\r")].contains(byte) {
            index += 1
        }
        return true
    }

    mutating func escape(into out: inout [UInt8]) throws(TOMLParseError) {
        guard let letter = peek(1) else { throw error("the string ends in the middle of an escape") }
        let simple: UInt8? =
            switch letter {
            case UInt8(ascii: "b"): 0x08
            case UInt8(ascii: "t"): 0x09
            case UInt8(ascii: "n"): 0x0A
            case UInt8(ascii: "f"): 0x0C
            case UInt8(ascii: "r"): 0x0D
            case UInt8(ascii: "\""): UInt8(ascii: "\"")
            case UInt8(ascii: "\\"): UInt8(ascii: "\\")
            default: nil
            }
        if let simple {
            out.append(simple)
            index += 2
            return
        }
        let length = letter == UInt8(ascii: "u") ? 4 : letter == UInt8(ascii: "U") ? 8 : 0
        guard length > 0 else {
            throw error("unknown escape '\\\(String(decoding: [letter], as: UTF8.self))' (TOML knows \\b \\t \\n \\f \\r \\\" \\\\ \\uXXXX \\UXXXXXXXX)")
        }
        let start = index + 2
        guard start + length <= bytes.count,
            bytes[start..<(start + length)].allSatisfy({ Self.isDigit($0) || ($0 | 0x20 >= UInt8(ascii: "a") && $0 | 0x20 <= UInt8(ascii: "f")) }),
            let code = UInt32(String(decoding: bytes[start..<(start + length)], as: UTF8.self), radix: 16),
            let scalar = Unicode.Scalar(code)
        else {
            throw error("'\\\(String(decoding: [letter], as: UTF8.self))' needs \(length) hex digits of a Unicode scalar value")
        }
        out += Array(String(Character(scalar)).utf8)
        index = start + length
    }

    // MARK: Positions

    func peek(_ offset: Int = 0) -> UInt8? {
        index + offset < bytes.count ? bytes[index + offset] : nil
    }

    mutating func consume(_ character: Unicode.Scalar) -> Bool {
        guard peek() == UInt8(character.value) else { return false }
        index += 1
        return true
    }

    mutating func skipBlanks() {
        while let byte = peek(), byte == UInt8(ascii: " ") || byte == UInt8(ascii: "\t") { index += 1 }
    }

    /// Inside arrays: blanks, comments and line breaks.
    mutating func skipBlanksCommentsAndLines() throws(TOMLParseError) {
        while true {
            skipBlanks()
            switch peek() {
            case UInt8(ascii: "#"):
                while let byte = peek(), byte != UInt8(ascii: "\n"), byte != UInt8(ascii: "\r") { index += 1 }
            case UInt8(ascii: "\n"):
                index += 1
            case UInt8(ascii: "\r"):
                index += 2
            default:
                return
            }
        }
    }

    /// What is at the current position, for messages.
    func found() -> String {
        guard let byte = peek() else { return "the end of the document" }
        if byte == UInt8(ascii: "\n") || byte == UInt8(ascii: "\r") { return "the end of the line" }
        var end = index + 1
        while end < bytes.count, bytes[end] & 0xC0 == 0x80 { end += 1 }
        return "'\(String(decoding: bytes[index..<end], as: UTF8.self))'"
    }

    func error(_ reason: String, at position: Int? = nil) -> TOMLParseError {
        let at = min(position ?? index, bytes.count)
        var line = 1
        var lineStart = 0
        for offset in 0..<at where bytes[offset] == UInt8(ascii: "\n") {
            line += 1
            lineStart = offset + 1
        }
        let column = bytes[lineStart..<at].reduce(1) { $1 & 0xC0 == 0x80 ? $0 : $0 + 1 }
        return TOMLParseError(line: line, column: column, reason: reason)
    }
}
