import FoundationEssentials
import HTTPTypes
import Logging
import NIOCore
import NIOHTTPTypes
import RCAgentCore

/// Answers a cached `GET /v1/token` on the connection's event loop, from ``TokenSnapshots``,
/// without the hops through Hummingbird's responder and the ``TokenCache`` actor.
///
/// It answers only what the router would answer from memory with the same bytes: a known profile
/// whose snapshot has `min_valid` left and is not due for refresh. Anything else — a miss, a
/// failure state, bad or unusual parameters, any other route, a request with a body,
/// `Expect` or a `Connection` other than `close` — goes to the router unchanged.
public struct TokenFastPath: Sendable {
    let snapshots: TokenSnapshots
    let profiles: AgentProfiles
    let clock: any AgentClock
    let audit: Logger

    /// How often a connection that keeps taking tokens writes its count to the audit trail.
    static let auditInterval: Double = 60

    /// The answer to `head` (whose parameters are `query`, from ``tokenQuery(_:)``) from the
    /// snapshot, with the profile it is for; nil: the router answers it.
    func answer(
        _ head: HTTPRequest, query: [String: String], now: Date, memo: inout (TokenResponse, TokenAnswer)?
    ) -> (answer: TokenAnswer, profile: String)? {
        guard let known = profiles.known(query["profile"]), ProfileName.isValid(known.profile),
            let minValid = try? TokenRoutes.minValid(raw: query["min_valid"]),
            let snapshot = snapshots.snapshot(profile: known.profile), snapshot.serves(minValid: minValid, at: now)
        else { return nil }
        let response = TokenResponse(snapshot.served, now: now, policy: known.policy)
        if TokenRoutes.wantsText(format: query["format"], accept: head.headerFields[.accept]) {
            return (TokenAnswer.text(response.accessToken), known.profile)
        }
        // The JSON changes once a second (expires_in): a connection encodes it at most that often.
        if let memo, memo.0 == response { return (memo.1, known.profile) }
        guard let answer = try? TokenAnswer.json(response) else { return nil }
        memo = (response, answer)
        return (answer, known.profile)
    }

    /// The parameters of a `GET /v1/token` the fast path may answer, else nil. Conservative on
    /// purpose: percent-encoding, duplicates, a body or connection handling are left to the router.
    static func tokenQuery(_ head: HTTPRequest) -> [String: String]? {
        guard head.method == .get, let path = head.path, path.hasPrefix("/v1/token") else { return nil }
        let fields = head.headerFields
        // `Connection: close` exactly as the router reads it (then the connection ends after the answer).
        guard fields[.connection] == nil || fields[.connection] == "close", fields[.expect] == nil,
            fields[.transferEncoding] == nil,
            fields[.contentLength] == nil || fields[.contentLength] == "0", fields[values: .accept].count <= 1
        else { return nil }
        let rest = path.utf8.dropFirst("/v1/token".utf8.count)
        guard let first = rest.first else { return [:] }
        guard first == UInt8(ascii: "?") else { return nil }
        var query: [String: String] = [:]
        for pair in rest.dropFirst().split(separator: UInt8(ascii: "&"), omittingEmptySubsequences: false) {
            guard !pair.contains(UInt8(ascii: "%")), !pair.contains(UInt8(ascii: "+")),
                let equals = pair.firstIndex(of: UInt8(ascii: "=")), equals != pair.startIndex,
                let key = String(pair[..<equals]), let value = String(pair[pair.index(after: equals)...]),
                query.updateValue(value, forKey: key) == nil
            else { return nil }
        }
        return query
    }
}

extension AgentAPI {
    /// The fast path over this API's cache and config.
    public func tokenFastPath() -> TokenFastPath {
        TokenFastPath(snapshots: cache.snapshots, profiles: profiles, clock: clock, audit: audit)
    }
}

/// One connection's fast path, between ``RequestLimitHandler`` and Hummingbird (so the limits and
/// the request timeout apply to its answers too).
///
/// Order on a keep-alive connection: it answers only while no request it passed on to the router
/// is still waiting for the end of its response; otherwise it passes every request on, and the
/// router answers them in order.
///
/// Audit: the first token a connection gets for a profile is logged as `token served` with the
/// peer; later ones are counted, and the count (`count`: tokens since the connection's previous
/// line for that profile) is logged once ``TokenFastPath/auditInterval`` has passed and when the
/// connection closes.
final class TokenFastPathHandler: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = HTTPRequestPart
    typealias InboundOut = HTTPRequestPart
    typealias OutboundIn = HTTPResponsePart
    typealias OutboundOut = HTTPResponsePart

    private let fastPath: TokenFastPath
    private let peer: PeerCredentials
    /// Requests passed on to the router whose response has not ended.
    private var forwarded = 0
    /// The head of a request the fast path may answer, kept until its end arrives.
    private var held: (head: HTTPRequest, query: [String: String])?
    private var unflushed = false
    /// A `Connection: close` request was answered: the output is closed, nothing more is read.
    private var finished = false
    /// A `Connection: close` request went to the router: it answers that one last, so the fast
    /// path must not answer anything after it on this connection.
    private var routerCloses = false
    private var memo: (TokenResponse, TokenAnswer)?
    /// Per profile: tokens not yet in the audit trail, and when its last line was written.
    private var tallies: [String: (count: Int, since: Date)] = [:]
    /// Read once: at close the peer may be gone.
    private lazy var executable = peer.executable

    init(fastPath: TokenFastPath, peer: PeerCredentials) {
        self.fastPath = fastPath
        self.peer = peer
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard !finished else { return }
        switch unwrapInboundIn(data) {
        case .head(let head):
            if forwarded == 0, !routerCloses, let query = TokenFastPath.tokenQuery(head) {
                held = (head, query)
                return
            }
            if head.headerFields[.connection] == "close" { routerCloses = true }
            forwarded += 1
        case .body:
            passOnHeld(context)
        case .end:
            if let request = held {
                let now = fastPath.clock.now()
                if let served = fastPath.answer(request.head, query: request.query, now: now, memo: &memo) {
                    held = nil
                    context.write(wrapOutboundOut(.head(served.answer.head)), promise: nil)
                    context.write(wrapOutboundOut(.body(served.answer.body)), promise: nil)
                    context.write(wrapOutboundOut(.end(nil)), promise: nil)
                    unflushed = true
                    audit(served.profile, now: now)
                    if request.head.headerFields[.connection] == "close" {
                        // As the router does: the answer, then the output closed; the client closes.
                        finished = true
                        unflushed = false
                        context.flush()
                        context.close(mode: .output, promise: nil)
                    }
                    return
                }
                // Nothing this connection might be answered from is kept past its use.
                memo = nil
                passOnHeld(context)
            }
        }
        context.fireChannelRead(data)
    }

    /// After a `Connection: close` answer nothing more is read, as the router stops reading: the
    /// request timeout then ends a client that keeps the connection open.
    func read(context: ChannelHandlerContext) {
        if !finished { context.read() }
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        if unflushed {
            unflushed = false
            context.flush()
        }
        context.fireChannelReadComplete()
    }

    func channelInactive(context: ChannelHandlerContext) {
        for (profile, tally) in tallies where tally.count > 0 { logServed(profile, count: tally.count) }
        tallies = [:]
        context.fireChannelInactive()
    }

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        if case .end = unwrapOutboundIn(data) { forwarded = max(0, forwarded - 1) }
        context.write(data, promise: promise)
    }

    /// A held head turned out to have a body: the router gets the request whole.
    private func passOnHeld(_ context: ChannelHandlerContext) {
        guard let request = held else { return }
        held = nil
        forwarded += 1
        context.fireChannelRead(wrapInboundOut(.head(request.head)))
    }

    private func audit(_ profile: String, now: Date) {
        guard var tally = tallies[profile] else {
            logServed(profile, count: 1)
            tallies[profile] = (0, now)
            return
        }
        tally.count += 1
        if now.timeIntervalSince(tally.since) >= TokenFastPath.auditInterval {
            logServed(profile, count: tally.count)
            tally = (0, now)
        }
        tallies[profile] = tally
    }

    private func logServed(_ profile: String, count: Int) {
        TokenRoutes.logServed(
            fastPath.audit, route: "token", profile: profile, peer: peer, executable: executable, count: count)
    }
}
