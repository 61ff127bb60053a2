import FoundationEssentials

extension RiskCloudError {
    /// A usual cause of a 401 at the token endpoint that rc-agent can spot without the tenant,
    /// in the stored Client ID and Secret or in the tenant URL (see `CredentialHeuristics`).
    public enum CredentialMistake: Sendable, Equatable {
        /// The stored secret contains spaces, tabs or line breaks.
        case whitespaceInSecret
        /// The stored Client ID contains spaces, tabs or line breaks.
        case whitespaceInClientID
        /// The Client ID and the secret are the same string (one was pasted twice).
        case clientIDEqualsSecret
        /// The secret starts with `Basic ` or `Bearer `: a whole header value was pasted.
        case authSchemeInSecret(scheme: String)
        /// The secret is valid base64 of readable text (of `ID:SECRET` when `joined`): it was encoded
        /// before it was stored, and rc-agent encodes it again.
        case secretAlreadyEncoded(joined: Bool)
        /// The URL's host is not a Risk Cloud tenant (`COMPANY.logicgate.com`).
        case notTenantHost(host: String)
        /// The URL in use is not the one the credentials were stored with.
        case urlDiffersFromStored(url: String, stored: String)

        public var message: String {
            switch self {
            case .whitespaceInSecret:
                return "the stored Client Secret contains spaces or line breaks (a copy-paste accident)"
            case .whitespaceInClientID:
                return "the stored Client ID contains spaces or line breaks (a copy-paste accident)"
            case .clientIDEqualsSecret:
                return "the stored Client ID and Client Secret are identical: one of them was pasted twice"
            case .authSchemeInSecret(let scheme):
                return "the stored Client Secret starts with '\(scheme) ': a whole Authorization header was pasted "
                    + "instead of the secret (wrong header type)"
            case .secretAlreadyEncoded(let joined):
                return joined
                    ? "the stored Client Secret is base64 of 'ID:SECRET' (an already encoded Basic credential); "
                        + "rc-agent encodes ID:SECRET itself, so it gets encoded twice"
                    : "the stored Client Secret looks already base64-encoded; rc-agent encodes ID:SECRET itself, "
                        + "so it gets encoded twice"
            case .notTenantHost(let host):
                return "the tenant URL's host \(host) is not a Risk Cloud tenant (COMPANY.logicgate.com)"
            case .urlDiffersFromStored(let url, let stored):
                return "the URL in use (\(url)) is not the one these credentials were stored for (\(stored)); "
                    + "credentials belong to one tenant"
            }
        }

        public var hint: String {
            switch self {
            case .whitespaceInSecret, .whitespaceInClientID, .clientIDEqualsSecret, .authSchemeInSecret,
                .secretAlreadyEncoded:
                return "copy the Client ID and the Client Secret again, each on its own, from Profile → Access Key "
                    + "and run `rc-agent login` (paste the plain secret; rc-agent builds Basic base64(ID:SECRET))"
            case .notTenantHost:
                return "use your tenant's address as in your browser (https://COMPANY.logicgate.com): "
                    + "`rc-agent login --url …`"
            case .urlDiffersFromStored:
                return "unset RC_AGENT_URL or fix the profile's url in the config, or log in to this tenant with "
                    + "`rc-agent login --url …`"
            }
        }
    }

    /// The message and hint for this error when it concerns the *stored* credentials of a profile
    /// (doctor), with the locally detected `mistakes` named first.
    ///
    /// For a 401 at the token endpoint without a detected mistake, the fix is to reset the secret and
    /// rotate the stored one; every other case keeps ``message`` and ``hint``.
    public func explained(by mistakes: [CredentialMistake], profile: String) -> (message: String, hint: String?) {
        guard kind == .credentialsRejected else { return (message, hint) }
        if mistakes.isEmpty {
            return (
                message,
                "the stored credentials look well-formed, so the secret was probably reset: reset it (Profile → "
                    + "Access Key → Reset Secret Key) and run `rc-agent rotate --profile \(profile)`. No Access Key "
                    + "tab: the user lacks API access; ask your Risk Cloud admin"
            )
        }
        let found = mistakes.map(\.message).joined(separator: "; ")
        var hints: [String] = []
        for mistake in mistakes where !hints.contains(mistake.hint) { hints.append(mistake.hint) }
        return (message + ". Likely cause: " + found, hints.joined(separator: "; "))
    }
}
