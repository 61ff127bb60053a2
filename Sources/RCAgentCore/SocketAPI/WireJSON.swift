import FoundationEssentials

/// The JSON the socket API and `--json` outputs write: keys sorted, slashes unescaped, dates as
/// RFC 3339 UTC. One encoder set-up for every document rc-agent prints or sends.
public enum WireJSON {
    /// `value` as one line of JSON (no newline).
    public static func encode(_ value: some Encodable, pretty: Bool = false) throws -> Data {
        let encoder = JSONEncoder()
        encoder.outputFormatting = pretty
            ? [.sortedKeys, .prettyPrinted, .withoutEscapingSlashes] : [.sortedKeys, .withoutEscapingSlashes]
        encoder.dateEncodingStrategy = .iso8601
        return try encoder.encode(value)
    }

    /// `2026-01-31T12:00:00Z`, with the Swift-native format style: an `ISO8601DateFormatter` per
    /// call builds an ICU formatter each time (40 % of the agent's CPU per token; docs/BENCHMARKS.md).
    public static func rfc3339(_ date: Date) -> String {
        date.formatted(.iso8601)
    }

    /// `{"ok":true}` and `{"ok":true,"profile":NAME}`: the answers of the agent's commands.
    public struct Acknowledgement: Codable, Sendable, Equatable {
        public var ok = true
        public var profile: String?
        public init(profile: String? = nil) { self.profile = profile }
    }
}
