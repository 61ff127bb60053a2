import FoundationEssentials

/// One caller's bearer token for a profile and the rule `rc-agent api` and the agent's proxy
/// share: on a 401 from the tenant, fetch a new token once (the agent coalesces concurrent
/// refreshes) and send the request again; a second 401 is the answer.
package actor BearerSession {
    package let profile: String
    let tokens: any AgentTokenSource
    package private(set) var current: TokenResponse?
    /// Every token value this session used, for redacting them from what it prints.
    package private(set) var seen: [String] = []
    private var refreshed = false

    package init(profile: String, tokens: any AgentTokenSource) {
        self.profile = profile
        self.tokens = tokens
    }

    /// The session's token, asked for once.
    package func token() async throws -> TokenResponse {
        if let current { return current }
        return remember(try await tokens.token(profile: profile, minValid: nil))
    }

    /// The tenant the session's token is for.
    package func tenant() async throws -> TenantURL {
        try TenantURL(parsing: try await token().url)
    }

    /// True once the session fetched a new token after a 401: a later 401 is on a fresh token.
    package var refreshedOnce: Bool { refreshed }

    /// A new token after a 401, or nil when this session already refreshed once.
    package func refresh() async throws -> TokenResponse? {
        guard !refreshed else { return nil }
        refreshed = true
        return remember(try await tokens.refresh(profile: profile))
    }

    /// Calls `send` with the session's token; when its answer has status 401 and `retryable`
    /// (the request can be sent twice), hands that answer to `discard` and calls `send` once more
    /// with a fresh token — at most once per session.
    package nonisolated func exchange<Answer>(
        retryable: Bool = true, status: (Answer) -> Int, discard: (Answer) async -> Void = { _ in },
        _ send: (TokenResponse) async throws -> Answer
    ) async throws -> Answer {
        let answer = try await send(try await token())
        guard retryable, status(answer) == 401, let fresh = try await refresh() else { return answer }
        await discard(answer)
        return try await send(fresh)
    }

    private func remember(_ token: TokenResponse) -> TokenResponse {
        current = token
        seen.append(token.accessToken.reveal())
        return token
    }
}
