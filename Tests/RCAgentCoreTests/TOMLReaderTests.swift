import Testing

@testable import RCAgentCore

@Suite struct TOMLReaderTests {
    @Test func aConfigLikeDocumentReadsToItsValues() throws {
        let table = try TOMLReader.parse(
            """
            # rc-agent
            [defaults]
            profile = "work"   # the usual one
            keyring_timeout = 2.5
            proxy_max_body = 67_108_864

            [profiles."work.eu"]
            url = 'https://acme.logicgate.com'
            site.region = "eu"
            "quoted key" = true
            """)
        #expect(table.keys == ["defaults", "profiles"])
        let defaults = try #require(table["defaults"]?.table)
        #expect(defaults.keys == ["profile", "keyring_timeout", "proxy_max_body"])
        #expect(defaults["profile"] == .string("work"))
        #expect(defaults["keyring_timeout"] == .float(2.5))
        #expect(defaults["proxy_max_body"] == .integer(67_108_864))
        let work = try #require(table["profiles"]?.table?["work.eu"]?.table)
        #expect(work["url"] == .string("https://acme.logicgate.com"))
        #expect(work["site"]?.table?["region"] == .string("eu"))
        #expect(work["quoted key"] == .boolean(true))
    }

    @Test(arguments: [
        (#"a = "\b""#, "\u{08}"), (#"a = "\t""#, "\t"), (#"a = "\n""#, "\n"), (#"a = "\f""#, "\u{0C}"),
        (#"a = "\r""#, "\r"), (#"a = "\"""#, "\""), (#"a = "\\""#, "\\"), (#"a = "\u00e9""#, "é"),
        (#"a = "\U0001F600""#, "😀"), (#"a = 'C:\no\escape'"#, #"C:\no\escape"#),
    ])
    func eachEscape(_ line: String, _ expected: String) throws {
        #expect(try TOMLReader.parse(line)["a"] == .string(expected))
    }

    @Test func multiLineStrings() throws {
        let table = try TOMLReader.parse(
            "a = \"\"\"\none\r\ntwo \\\n    three\"\"\"\nb = '''\n\\n raw ''''\nc = \"\"\"\"quoted\"\"\"\"\n")
        #expect(table["a"] == .string("one\ntwo three"))
        #expect(table["b"] == .string("\\n raw '"))
        #expect(table["c"] == .string("\"quoted\""))
    }

    @Test func numbersAndBooleans() throws {
        let table = try TOMLReader.parse(
            """
            a = +17
            b = -1_000
            c = 0xDEAD_beef
            d = 0o755
            e = 0b1101
            f = 6.626e-34
            g = -0.5
            h = 1E6
            i = -inf
            j = true
            k = false
            l = 0
            """)
        #expect(table["a"] == .integer(17))
        #expect(table["b"] == .integer(-1000))
        #expect(table["c"] == .integer(0xDEAD_BEEF))
        #expect(table["d"] == .integer(0o755))
        #expect(table["e"] == .integer(13))
        #expect(table["f"] == .float(6.626e-34))
        #expect(table["g"] == .float(-0.5))
        #expect(table["h"] == .float(1e6))
        #expect(table["i"] == .float(-.infinity))
        #expect(table["j"] == .boolean(true))
        #expect(table["k"] == .boolean(false))
        #expect(table["l"] == .integer(0))
        #expect(try TOMLReader.parse("n = nan")["n"]?.double?.isNaN == true)
    }

    @Test func datesAndTimesAreKeptAsText() throws {
        let table = try TOMLReader.parse("a = 1979-05-27T07:32:00Z\nb = 1979-05-27 07:32:00.999-07:00\nc = 1979-05-27\nd = 07:32:00\n")
        #expect(table["a"] == .dateTime("1979-05-27T07:32:00Z"))
        #expect(table["b"] == .dateTime("1979-05-27 07:32:00.999-07:00"))
        #expect(table["c"] == .dateTime("1979-05-27"))
        #expect(table["d"] == .dateTime("07:32:00"))
    }

    @Test func nesting() throws {
        let table = try TOMLReader.parse(
            """
            points = [ { x = 1, y.z = 2 }, [1, "two", [3.0]],
              # a comment inside
              "last", ]
            [a.b.c]
            d = 1
            [a]
            e = 2
            [[servers]]
            name = "one"
            [[servers]]
            name = "two"
            [servers.extra]
            ok = true
            """)
        let points = try #require(table["points"]?.array)
        #expect(points.count == 3)
        #expect(points[0].table?["y"]?.table?["z"] == .integer(2))
        #expect(points[1] == .array([.integer(1), .string("two"), .array([.float(3)])]))
        #expect(table["a"]?.table?["b"]?.table?["c"]?.table?["d"] == .integer(1))
        #expect(table["a"]?.table?["e"] == .integer(2))
        let servers = try #require(table["servers"]?.array)
        #expect(servers.map { $0.table?["name"] } == [.string("one"), .string("two")])
        #expect(servers[1].table?["extra"]?.table?["ok"] == .boolean(true))
    }

    @Test(arguments: [
        ("a = 1\na = 2\n", 2, "duplicate key 'a'"),
        ("[t]\n[t]\n", 2, "duplicate table [t]"),
        ("a.b = 1\n[a]\n", 2, "duplicate table [a]"),
        ("[a]\nb = 1\n[a.b]\n", 3, "duplicate table [a.b]"),
        ("a = {b = 1}\n[a]\n", 2, "duplicate table [a]"),
        ("a = {b = 1}\na.c = 2\n", 2, "'a.c': 'a' is already defined"),
        ("x = 1\n\nbroken = = 3\n", 3, "expected a value"),
        ("s = \"open\n", 1, "not closed"),
        ("m = \"\"\"\nnever\n", 3, "not closed"),
        ("a = \"\\q\"\n", 1, "unknown escape"),
        ("a = \"\\uD800\"\n", 1, "hex digits"),
        ("a = \"\\u12\"\n", 1, "hex digits"),
        ("a = 012\n", 1, "not a value"),
        ("a = 1__0\n", 1, "not a value"),
        ("a = 99999999999999999999\n", 1, "out of range"),
        ("a = 1979-13-01\n", 1, "not a valid date"),
        ("a = 1 2\n", 1, "end of the line"),
        ("a = [1 2]\n", 1, "expected ',' or ']'"),
        ("a = {b = 1,}\n", 1, "expected a key"),
        ("a = {b = 1\n}\n", 1, "inline table"),
        ("[\rr]\n", 1, "U+000D"),
        ("# bell \u{07}\n", 1, "U+0007"),
        ("[é]\n", 1, "expected a key"),
        ("[+1]\n", 1, "expected a key"),
        ("[[!f]\n", 1, "expected a key"),
        ("[a\n", 1, "expected ']'"),
        ("[[a]\n", 1, "expected ']]'"),
        ("key\n", 1, "expected '='"),
        ("\"\"\"k\"\"\" = 1\n", 1, "multi-line"),
    ])
    func invalidDocumentsAreErrorsWithTheirLine(_ text: String, _ line: Int, _ reason: String) {
        let error = #expect(throws: TOMLParseError.self) { try TOMLReader.parse(text) }
        #expect(error?.line == line, "\(String(describing: error))")
        #expect(error?.reason.contains(reason) == true, "\(String(describing: error))")
    }

    @Test func deepNestingIsAnErrorNotAStackOverflow() {
        let deep = "a = " + String(repeating: "[", count: 100_000) + "\n"
        let error = #expect(throws: TOMLParseError.self) { try TOMLReader.parse(deep) }
        #expect(error?.reason.contains("nested too deeply") == true)
    }

    /// Dotted keys inside nested inline tables count towards one bound for the whole tree (each
    /// level here is within the per-key and per-level limits; together they are 99 × 100 deep).
    @Test func dottedKeysInNestedInlineTablesAreBoundedAsAWhole() {
        let key = (1...99).map { "k\($0)" }.joined(separator: ".")
        let document = "a = " + String(repeating: "{ \(key) = ", count: 100) + "1" + String(repeating: " }", count: 100) + "\n"
        let error = #expect(throws: TOMLParseError.self) { try TOMLReader.parse(document) }
        #expect(error?.reason.contains("nested too deeply") == true, "\(String(describing: error))")
    }

    @Test func manyArrayOfTablesHeadersEachAddATable() throws {
        let document = String(repeating: "[[a]]\nx = 1\n", count: 5_000)
        #expect(try TOMLReader.parse(document)["a"]?.array?.count == 5_000)
    }

    @Test func theColumnCountsCharacters() {
        let error = #expect(throws: TOMLParseError.self) { try TOMLReader.parse("k = \"é\" ?\n") }
        #expect(error?.column == 9)
        #expect(error?.description == "expected the end of the line, found '?' (column 9)")
    }

    @Test func aByteOrderMarkAndCRLFLineEndsAreRead() throws {
        let table = try TOMLReader.parse("\u{FEFF}[t]\r\nk = 'v'\r\n")
        #expect(table["t"]?.table?["k"] == .string("v"))
    }
}
