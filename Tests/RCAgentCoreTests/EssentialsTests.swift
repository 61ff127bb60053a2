import Foundation
@testable import RCAgentCore
import Testing

/// The helpers that stand in for what only full Foundation has (the product links
/// FoundationEssentials only): each checked against the Foundation call it replaced, which the
/// test target may still use.
@Suite struct EssentialsTests {
    @Test(arguments: ["/a/b/c", "/a/b/", "/a", "/", "a/b", "//a//b", "/a//b", "/x//y//z/", "/run/user/1000//rc-agent/agent.sock", "a//b//c"])
    func pathHelpersMatchNSString(_ path: String) {
        #expect(PathText.directory(of: path) == (path as NSString).deletingLastPathComponent, "\(path)")
        #expect(PathText.name(of: path) == (path as NSString).lastPathComponent, "\(path)")
    }

    /// A single relative component (NSString on Linux traps on it).
    @Test func pathHelpersOfOneComponent() {
        #expect(PathText.directory(of: "a") == "" && PathText.name(of: "a") == "a")
        #expect(PathText.directory(of: "") == "" && PathText.name(of: "") == "")
    }

    @Test(arguments: [0.0, 0.04, 0.05, 0.25, 1.5, 2.25, 2.35, 99.95, 120.0, 1e9 + 0.5])
    func oneDecimalMatchesStringFormat(_ value: Double) {
        #expect(CFormat.oneDecimal(value) == String(format: "%.1f", value))
    }

    @Test func hex4MatchesStringFormat() {
        for value: UInt32 in [0, 0x7, 0x1B, 0x7F, 0x9B, 0x202E, 0xFEFF, 0x1F600] {
            #expect(CFormat.hex4(value) == String(format: "%04X", value))
        }
    }

    @Test func trimmingAndScalarClassesMatchCharacterSet() {
        let samples = [" \t a b \t ", "\n\r x \u{85}\u{2028}", "\u{A0}\u{3000}y\u{2009}", "", "   ", "\u{200B}z\u{200B}"]
        for text in samples {
            #expect(text.trimmingBlanks() == text.trimmingCharacters(in: .whitespaces), "\(text.debugDescription)")
            #expect(
                text.trimmingBlanksAndNewlines() == text.trimmingCharacters(in: .whitespacesAndNewlines),
                "\(text.debugDescription)")
        }
        // Every scalar below plane 14, where CharacterSet's control set holds unassigned ones.
        var differing: [String] = []
        for value in 0..<0xE0000 {
            guard let scalar = Unicode.Scalar(value) else { continue }
            if scalar.isControlOrFormat != CharacterSet.controlCharacters.contains(scalar)
                || scalar.isBlank != CharacterSet.whitespaces.contains(scalar)
                || scalar.isBlankOrNewline != CharacterSet.whitespacesAndNewlines.contains(scalar)
            {
                differing.append("U+" + String(value, radix: 16, uppercase: true))
            }
        }
        #expect(differing.isEmpty, "\(differing.prefix(20))")
        // Alphanumerics where CharacterSet's older Unicode tables agree: Latin, Greek, Cyrillic, CJK, digits.
        let letters = (0...0x52F).compactMap(Unicode.Scalar.init) + ["一", "ß", "٣", "½", "\u{301}"]
        for scalar in letters {
            #expect(scalar.isLetterMarkOrNumber == CharacterSet.alphanumerics.contains(scalar), "U+\(scalar.value)")
        }
    }

    @Test(arguments: ["%2e%2E", "a%20b", "%C3%A9", "%", "%2", "%zz", "%FF", "plain", "%252e", "%00"])
    func percentDecodingMatchesFoundation(_ text: String) {
        #expect(text.removingPercentEscapes == text.removingPercentEncoding, "\(text)")
    }

    @Test func httpDateRetryAfterIsResolvedAgainstNow() throws {
        let now = try Date("1994-11-06T08:49:00Z", strategy: .iso8601)
        #expect(RiskCloudError.retryAfter("Sun, 06 Nov 1994 08:49:37 GMT", now: now) == 37)
        #expect(RiskCloudError.retryAfter("  Sun, 06 Nov 1994 08:49:37 GMT ", now: now) == 37)
        #expect(RiskCloudError.retryAfter("Sun, 06 Nov 1994 08:48:00 GMT", now: now) == 0, "in the past: now")
        #expect(RiskCloudError.retryAfter("120", now: now) == 120)
        for bad in ["Sunday, 06-Nov-94 08:49:37 GMT", "Sun, 06 Nov 1994 08:49:37 PST", "Sun, 32 Nov 1994 08:49:37 GMT",
            "Sun, 06 Nov 1994 24:00:00 GMT", "soon", "-5"]
        {
            #expect(RiskCloudError.retryAfter(bad, now: now) == nil, "\(bad)")
        }
    }

    /// `api`'s output: what `JSONSerialization` printed with `.sortedKeys` and `.withoutEscapingSlashes`.
    @Test func jsonValueRoundTripsLikeJSONSerialization() throws {
        let samples = [
            #"{"b":[1,2.5,"x/y",null,true,false],"a":{"z":-3,"A":"é\n\"q\""},"c":[]}"#,
            #"[{"id":1,"name":"r/1"},{"id":2,"nested":{"k":[{}]}}]"#,
            #""fragment""#, "42", "-0.125", "1e3",
        ]
        for sample in samples {
            let value = try #require(JSONValue(parsing: Array(sample.utf8)), "\(sample)")
            let object = try JSONSerialization.jsonObject(with: Data(sample.utf8), options: [.fragmentsAllowed])
            for pretty in [false, true] {
                let options: JSONSerialization.WritingOptions =
                    pretty ? [.prettyPrinted, .sortedKeys, .withoutEscapingSlashes, .fragmentsAllowed]
                    : [.sortedKeys, .withoutEscapingSlashes, .fragmentsAllowed]
                let expected = String(decoding: try JSONSerialization.data(withJSONObject: object, options: options), as: UTF8.self)
                #expect(String(decoding: try value.encoded(pretty: pretty), as: UTF8.self) == expected, "\(sample)")
            }
        }
        #expect(JSONValue(parsing: Array("{".utf8)) == nil)
        let page = try #require(JSONValue(parsing: Array(#"{"page":{"number":2.0,"totalPages":3},"ok":true}"#.utf8)))
        #expect(page["page"]?["number"]?.int == 2 && page["page"]?["totalPages"]?.int == 3)
        #expect(page["ok"]?.int == nil && page["ok"]?.double == nil, "a boolean is not a number")
    }

    @Test func excerptsStillRedactAndStripLikeBefore() {
        let cleaned = ResponseExcerpt.clean(
            "\u{1B}[31m<b>Error</b>\u{1B}]0;title\u{07} {\"Access_Token\" : \"abc\", \"x\":1} BEARER abc.def Basic Zm9v "
                + String(repeating: "A", count: 40) + "\n\t end")
        #expect(cleaned == #"Error {"Access_Token" : "<redacted>", "x":1} BEARER <redacted> Basic <redacted> <redacted> end"#)
    }
}
