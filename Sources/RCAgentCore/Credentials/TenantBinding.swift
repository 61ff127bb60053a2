import FoundationEssentials

/// A tenant URL the environment or the config file names for a profile, and which of them.
public struct RequestedTenant: Sendable, Equatable {
    public let url: TenantURL
    /// `RC_AGENT_URL`, or the config file's path.
    public let source: String
}

extension Settings {
    /// The tenant URL `RC_AGENT_URL` or the config file names for `profile`, or nil when neither does.
    public func requestedTenant(profile: String) throws -> RequestedTenant? {
        if let env = environment["RC_AGENT_URL"], !env.isEmpty {
            return RequestedTenant(url: try TenantURL(parsing: env), source: "RC_AGENT_URL")
        }
        if let url = config.profiles[profile]?.url, !url.isEmpty {
            return RequestedTenant(url: try TenantURL(parsing: url), source: configPath)
        }
        return nil
    }
}

extension StoredCredential {
    /// The one tenant these credentials may be sent to: the URL stored with them. Throws
    /// ``TenantMismatchError`` when `requested` names another one, before anything is sent.
    public func tenant(requested: RequestedTenant?) throws -> TenantURL {
        let stored = try TenantURL(parsing: url)
        if let requested, requested.url != stored {
            throw TenantMismatchError(profile: profile, stored: stored, requested: requested)
        }
        return stored
    }
}

/// The environment or the config names a tenant other than the one the credentials were stored
/// for: a stored secret goes only to the URL stored with it.
public struct TenantMismatchError: RCAgentError, Equatable {
    public let profile: String
    public let stored: TenantURL
    public let requested: RequestedTenant

    public var code: ErrorCode { .urlMismatch }

    public var message: String {
        "profile '\(profile)' has credentials stored for \(stored.base), but \(requested.source) names "
            + "\(requested.url.base); a stored secret is sent only to the tenant it was stored for, so nothing was sent"
    }

    public var hint: String? {
        let fix = requested.source == "RC_AGENT_URL"
            ? "unset RC_AGENT_URL" : "set `url` under [profiles.\(profile)] in \(requested.source) back to \(stored.base)"
        return "to use \(requested.url.base), log in there: `rc-agent login --profile \(profile) --url \(requested.url.base)`; "
            + "otherwise \(fix)"
    }
}
