import FoundationEssentials

/// The usual causes of a 401 at the token endpoint that can be seen without asking the tenant.
///
/// Doctor runs these only after the tenant refused the stored credentials, to say *which* mistake
/// it probably is; the texts are ``RiskCloudError/CredentialMistake``'s (the one diagnosis module).
public enum CredentialHeuristics {
    /// Every mistake found in the stored `clientID`/`secret`, the `tenant` in use and the URL the
    /// credentials were `storedURL` with (nil or empty: unknown), most specific first.
    public static func detect(
        clientID: String, secret: Secret, tenant: TenantURL, storedURL: String?
    ) -> [RiskCloudError.CredentialMistake] {
        var found: [RiskCloudError.CredentialMistake] = []
        let value = secret.reveal()
        if let scheme = authScheme(in: value) {
            found.append(.authSchemeInSecret(scheme: scheme))
        } else if containsWhitespace(value) {
            found.append(.whitespaceInSecret)
        }
        if containsWhitespace(clientID) { found.append(.whitespaceInClientID) }
        if !clientID.isEmpty, clientID == value { found.append(.clientIDEqualsSecret) }
        if let joined = alreadyEncoded(value) { found.append(.secretAlreadyEncoded(joined: joined)) }
        if let storedURL, !storedURL.isEmpty, let stored = try? TenantURL(parsing: storedURL), stored != tenant {
            found.append(.urlDiffersFromStored(url: tenant.base, stored: stored.base))
        }
        if !isTenantHost(tenant.host) { found.append(.notTenantHost(host: tenant.host)) }
        return found
    }

    /// True when `text` holds a space, tab, line break or other Unicode whitespace anywhere.
    static func containsWhitespace(_ text: String) -> Bool {
        text.unicodeScalars.contains { $0.isBlankOrNewline }
    }

    /// `Basic` or `Bearer` when `secret` starts with that scheme and a space.
    static func authScheme(in secret: String) -> String? {
        for scheme in ["Basic", "Bearer"] where secret.lowercased().hasPrefix(scheme.lowercased() + " ") {
            return scheme
        }
        return nil
    }

    /// Nil unless `secret` is canonical standard base64 of readable UTF-8 text; then true when that
    /// text contains `:` (an encoded `ID:SECRET`), false otherwise.
    ///
    /// Random secrets practically never qualify: 24 random bytes are all printable with probability
    /// (95/256)^24 ≈ 10⁻¹⁰, and they must also re-encode to exactly the same string.
    static func alreadyEncoded(_ secret: String) -> Bool? {
        guard secret.count >= 8, secret.count % 4 == 0, let data = Data(base64Encoded: secret),
            data.count >= 4, data.base64EncodedString() == secret,
            let text = String(data: data, encoding: .utf8),
            !text.unicodeScalars.contains(where: \.isControlOrFormat),
            text.unicodeScalars.allSatisfy({ $0.value >= 0x20 && $0.value != 0x7F && $0.value != 0xFFFD })
        else { return nil }
        return text.contains(":")
    }

    /// Hosts under logicgate.com that serve people, not an API tenant.
    static let nonTenantSubdomains: Set<String> = ["www", "help", "support", "docs", "status", "community"]

    /// True for `COMPANY.logicgate.com` and for loopback (the local stand-in).
    static func isTenantHost(_ host: String) -> Bool {
        let host = host.lowercased()
        if TenantURL.isLoopback(host) { return true }
        guard host.hasSuffix(".logicgate.com") else { return false }
        let company = host.dropLast(".logicgate.com".count)
        return !company.isEmpty && !company.contains(".") && !nonTenantSubdomains.contains(String(company))
    }
}
