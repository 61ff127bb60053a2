import FoundationEssentials
import NIOHTTP1
import RCAgentCore

/// What `rc-agent api` prints and how it exits.
public struct APIOutput: Sendable, Equatable {
    /// Bytes for standard output: the body (or the paginated array), headers first with `--include`.
    public var stdout: [UInt8]
    /// Text for standard error: the diagnosis of a non-2xx answer.
    public var stderr: String
    /// 0, 1 for a non-2xx answer, 22 for one with `--fail`.
    public var exitCode: Int32
}

/// `rc-agent api`: one request (or a series of pages) to the profile's tenant with the agent's token.
///
/// The token comes from the agent and is never printed: a 401 makes the agent fetch a new one
/// (once per run) and the request is sent again. Non-2xx answers keep their body on stdout and
/// get their diagnosis from ``RiskCloudError/forResponse(status:headers:body:tenant:path:endpoint:now:redacting:)``.
/// Failures without an answer (agent, network) are thrown as ``RCAgentError``s.
public struct APIRunner: Sendable {
    let profile: String
    let tokens: any AgentTokenSource
    let transport: any TenantRequesting
    let clock: any AgentClock

    /// Largest response body kept.
    public static let maximumResponseBytes = 64 << 20
    /// Most pages `--paginate` follows.
    public static let maximumPages = 10_000
    /// Most bytes `--paginate` collects over all pages (by default the single-answer limit).
    let maximumPaginatedBytes: Int

    public init(
        profile: String, tokens: any AgentTokenSource, transport: any TenantRequesting, clock: any AgentClock,
        maximumPaginatedBytes: Int = APIRunner.maximumResponseBytes
    ) {
        self.profile = profile
        self.tokens = tokens
        self.transport = transport
        self.clock = clock
        self.maximumPaginatedBytes = maximumPaginatedBytes
    }

    public func run(_ request: APIRequest) async throws -> APIOutput {
        let session = BearerSession(profile: profile, tokens: tokens)
        let tenant = try await session.tenant()
        var output = request.paginate
            ? try await paginate(request, tenant: tenant, session: session)
            : try await single(request, tenant: tenant, session: session)
        // The answer never carries our token out, even if the tenant echoed it.
        for token in await session.seen { output.stdout = Self.redact(token, in: output.stdout) }
        return output
    }

    /// Sends `path` with the session's token; on a 401, once per run, with a fresh one.
    private func exchange(_ request: APIRequest, path: String, tenant: TenantURL, session: BearerSession) async throws
        -> UpstreamResponse
    {
        try await session.exchange(status: \.status) { token in
            try await transport.send(
                method: request.method, tenant: tenant, path: path, headers: request.headers, body: request.body,
                token: token.accessToken, maxBodyBytes: Self.maximumResponseBytes)
        }
    }

    private func single(_ request: APIRequest, tenant: TenantURL, session: BearerSession) async throws -> APIOutput {
        let response = try await exchange(request, path: request.path, tenant: tenant, session: session)
        var out: [UInt8] = []
        if request.include { out += Array(Self.head(response).utf8) }
        out += request.pretty ? Self.pretty(response.body) ?? response.body : response.body
        return APIOutput(
            stdout: out, stderr: await diagnosis(response, path: request.path, tenant: tenant, session: session),
            exitCode: (200..<300).contains(response.status) ? 0 : (request.fail ? 22 : 1))
    }

    private func paginate(_ request: APIRequest, tenant: TenantURL, session: BearerSession) async throws -> APIOutput {
        var items: [JSONValue] = []
        var path: String? = request.path
        var visited: Set<String> = []
        var collected = 0
        while let current = path {
            guard visited.count < Self.maximumPages, visited.insert(current).inserted else {
                throw UsageError("--paginate stopped: the tenant's page links loop or exceed \(Self.maximumPages) pages")
            }
            let response = try await exchange(request, path: current, tenant: tenant, session: session)
            guard (200..<300).contains(response.status) else {
                return APIOutput(
                    stdout: response.body,
                    stderr: await diagnosis(response, path: current, tenant: tenant, session: session),
                    exitCode: request.fail ? 22 : 1)
            }
            collected += response.body.count
            guard collected <= maximumPaginatedBytes else {
                throw UsageError(
                    "--paginate stopped: the pages add up to more than \(maximumPaginatedBytes >> 20) MiB "
                        + "(\(maximumPaginatedBytes) bytes) after \(visited.count) pages",
                    hint: "narrow the query (filters, a smaller date range), or fetch the pages one by one "
                        + "with ?page=N and without --paginate")
            }
            guard let page = JSONValue(parsing: response.body), let content = page["content"]?.array else {
                throw UsageError(
                    "--paginate: \(current) did not answer with a v2 page ({content[], links, page})",
                    hint: "use --paginate with v2 list endpoints such as /api/v2/records")
            }
            items += content
            path = try Self.nextPath(after: page, current: current, tenant: tenant)
        }
        let data = try JSONValue.array(items).encoded(pretty: request.pretty)
        return APIOutput(stdout: data + [UInt8(ascii: "\n")], stderr: "", exitCode: 0)
    }

    /// The next page's path: `links.next` (only on the same tenant), else `page.number + 1` while
    /// below `page.totalPages`; nil on the last page.
    static func nextPath(after page: JSONValue, current: String, tenant: TenantURL) throws -> String? {
        if let next = page["links"]?["next"]?.string, !next.isEmpty {
            if next.hasPrefix("/") && !next.hasPrefix("//") { return next }
            guard let components = URLComponents(string: next), let host = components.host,
                let linked = try? TenantURL(parsing: "\(components.scheme ?? "https")://\(host)" + (components.port.map { ":\($0)" } ?? "")),
                linked == tenant
            else {
                throw UsageError(
                    "--paginate stopped: the next-page link leads away from \(tenant.base)",
                    hint: "rc-agent sends the token only to the profile's tenant")
            }
            let query = components.percentEncodedQuery.map { "?" + $0 } ?? ""
            return (components.percentEncodedPath.isEmpty ? "/" : components.percentEncodedPath) + query
        }
        guard let info = page["page"], let number = info["number"]?.int, let total = info["totalPages"]?.int,
            number + 1 < total
        else { return nil }
        var components = URLComponents(string: current) ?? URLComponents()
        var query = (components.queryItems ?? []).filter { $0.name != "page" }
        query.append(URLQueryItem(name: "page", value: String(number + 1)))
        components.queryItems = query
        return components.string
    }

    /// The diagnosis line for a non-2xx answer ("" for 2xx).
    private func diagnosis(_ response: UpstreamResponse, path: String, tenant: TenantURL, session: BearerSession) async
        -> String
    {
        guard let error = RiskCloudError.forResponse(
            status: response.status, headers: response.headers, body: response.body, tenant: tenant,
            path: TenantRequest.pathWithoutQuery(path), endpoint: .api, now: clock.now(), redacting: await session.seen,
            freshToken: await session.refreshedOnce)
        else { return "" }
        return "rc-agent: \(error)\n"
    }

    /// `HTTP/1.1 200 OK`, the headers and a blank line.
    static func head(_ response: UpstreamResponse) -> String {
        let reason = HTTPResponseStatus(statusCode: response.status).reasonPhrase
        return "HTTP/1.1 \(response.status) \(reason)\r\n"
            + response.headers.map { "\($0.name): \($0.value)\r\n" }.joined() + "\r\n"
    }

    /// `body` re-indented when it is JSON, nil otherwise.
    static func pretty(_ body: [UInt8]) -> [UInt8]? {
        guard !body.isEmpty, let value = JSONValue(parsing: body), let data = try? value.encoded(pretty: true)
        else { return nil }
        return data + [UInt8(ascii: "\n")]
    }

    /// `bytes` with every occurrence of `value` replaced by `<redacted>`.
    static func redact(_ value: String, in bytes: [UInt8]) -> [UInt8] {
        let needle = Array(value.utf8)
        guard needle.count >= 8, bytes.count >= needle.count else { return bytes }
        var out: [UInt8] = []
        out.reserveCapacity(bytes.count)
        var index = 0
        while index < bytes.count {
            if index + needle.count <= bytes.count, bytes[index] == needle[0],
                bytes[index..<(index + needle.count)].elementsEqual(needle)
            {
                out += Array("<redacted>".utf8)
                index += needle.count
            } else {
                out.append(bytes[index])
                index += 1
            }
        }
        return out
    }
}
