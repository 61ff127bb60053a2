import FoundationEssentials

/// Checks and tidies a Client ID and Secret before anything is sent or stored.
public enum CredentialInput {
    /// The credentials to use, plus notes to show the user about what was changed.
    public struct Normalised: Sendable, Equatable {
        public var clientID: String
        public var secret: Secret
        /// Human-readable notes (never containing the secret), e.g. that a trailing newline was removed.
        public var notes: [String]
    }

    /// Trims copy-paste accidents (surrounding spaces/newlines) from both values, with a note for
    /// each, and rejects what cannot be right: an empty value, a Client ID with `:` or control
    /// characters (it would split the Basic credentials), a secret with control characters inside.
    /// Throws ``UsageError``.
    public static func normalise(clientID: String, secret: Secret) throws -> Normalised {
        var notes: [String] = []
        let id = clientID.trimmingBlanksAndNewlines()
        if id != clientID { notes.append("removed spaces or newlines around the Client ID") }
        try validateClientID(id)

        let raw = secret.reveal()
        let trimmed = raw.trimmingBlanksAndNewlines()
        if trimmed != raw {
            notes.append("removed spaces or newlines around the Client Secret (a copy-paste accident)")
        }
        guard !trimmed.isEmpty else {
            throw UsageError("the Client Secret is empty", hint: "copy it from Profile → Access Key in Risk Cloud")
        }
        if trimmed.unicodeScalars.contains(where: \.isControlOrFormat) {
            throw UsageError(
                "the Client Secret contains control characters (a line break inside it?)",
                hint: "copy it again from Profile → Access Key in Risk Cloud")
        }
        return Normalised(clientID: id, secret: Secret(trimmed), notes: notes)
    }

    /// Rejects a Client ID that cannot be sent: empty, with `:` or control characters. Throws ``UsageError``.
    public static func validateClientID(_ id: String) throws {
        guard !id.isEmpty else {
            throw UsageError("the Client ID is empty", hint: "copy it from Profile → Access Key in Risk Cloud")
        }
        if id.contains(":") {
            throw UsageError(
                "the Client ID must not contain ':' (Basic authentication joins ID and secret with a colon)",
                hint: "copy the Client ID alone from Profile → Access Key in Risk Cloud")
        }
        if id.unicodeScalars.contains(where: \.isControlOrFormat) {
            throw UsageError(
                "the Client ID contains control characters",
                hint: "copy the Client ID again from Profile → Access Key in Risk Cloud")
        }
    }
}

/// The token endpoint's `Authorization: Basic` header.
public enum BasicAuth {
    /// Standard base64 (no line breaks) of the UTF-8 bytes of `text`.
    public static func encode(_ text: String) -> String {
        Data(text.utf8).base64EncodedString()
    }

    /// `Basic base64(id + ":" + secret)`: the joined string, encoded once. Redacted when printed.
    public static func header(clientID: String, secret: Secret) -> Secret {
        Secret("Basic " + encode(clientID + ":" + secret.reveal()))
    }
}
