import FoundationEssentials
import HTTPTypes
import Logging
import NIOCore
import NIOHTTPTypes
import RCAgentCore
import Synchronization

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
    /// The audit trail of the tokens it serves, shared by all connections.
    let audit: ServedTokenAudit
    /// The answers' bytes, shared by all connections.
    let encoded = EncodedAnswers()

    /// How often a peer that keeps taking tokens has its count written to the audit trail.
    static let auditInterval: Double = 60

    /// Every interval and when the server stops: writes the audit counts not yet written, and drops
    /// the shared encoded answers (each serves one second; a withdrawn token's bytes, never served
    /// again, are gone within an interval even if its profile is never asked for again).
    func flush() {
        audit.flush(now: clock.now())
        encoded.removeAll()
    }

    /// A connection's last answer, for the same request again within its second.
    struct ConnectionMemo {
        let response: TokenResponse
        let text: Bool
        let answer: EncodedAnswer
    }

    /// A `GET /v1/token` the fast path may answer: its parameters and what else the answer
    /// depends on.
    struct Request {
        /// The parameters the fast path reads, each at most once (any other parameter is the
        /// router's).
        var profile: String?
        var minValid: String?
        var format: String?
        /// The `Accept` field.
        var accept: String?
        /// `Connection: close`: the connection ends after the answer.
        var closes: Bool
    }

    /// The answer to `request` from the snapshot, with the profile it is for; nil: the router
    /// answers it.
    func answer(_ request: Request, now: Date, memo: inout ConnectionMemo?) -> (answer: EncodedAnswer, profile: String)? {
        guard let known = profiles.known(request.profile), ProfileName.isValid(known.profile),
            let minValid = try? TokenRoutes.minValid(raw: request.minValid)
        else { return nil }
        guard let snapshot = snapshots.snapshot(profile: known.profile) else {
            encoded.forget(known.profile)
            return nil
        }
        guard snapshot.serves(minValid: minValid, at: now) else { return nil }
        let response = TokenResponse(snapshot, now: now, policy: known.policy)
        let text = TokenRoutes.wantsText(format: request.format, accept: request.accept)
        // The JSON changes once a second (expires_in): a keep-alive connection looks an answer up
        // in the shared ones (under their lock) at most that often.
        if let memo, memo.text == text, memo.response == response { return (memo.answer, known.profile) }
        guard let answer = encoded.answer(known.profile, response, text: text) else { return nil }
        memo = ConnectionMemo(response: response, text: text, answer: answer)
        return (answer, known.profile)
    }

    /// `head` as a request the fast path may answer, else nil. Conservative on purpose: a body,
    /// `Expect` or connection handling other than `close` are left to the router.
    static func request(_ head: HTTPRequest) -> Request? {
        guard head.method == .get, let path = head.path else { return nil }
        let fields = head.headerFields
        guard fields[.expect] == nil, fields[.transferEncoding] == nil,
            fields[.contentLength] == nil || fields[.contentLength] == "0"
        else { return nil }
        return request(path: path, connection: fields[.connection], accept: fields[.accept])
    }

    /// A `GET` of `path` with these fields as a request the fast path may answer, else nil.
    /// Percent-encoding, duplicate parameters and parameters other than `profile`, `min_valid` and
    /// `format` are left to the router.
    static func request(path: String, connection: String?, accept: String?) -> Request? {
        // `Connection: close` exactly as the router reads it (then the connection ends after the answer).
        guard path.hasPrefix("/v1/token"), connection == nil || connection == "close" else { return nil }
        let rest = path.utf8.dropFirst("/v1/token".utf8.count)
        var request = Request(accept: accept, closes: connection != nil)
        if let first = rest.first {
            guard first == UInt8(ascii: "?") else { return nil }
            for pair in rest.dropFirst().split(separator: UInt8(ascii: "&"), omittingEmptySubsequences: false) {
                guard !pair.contains(UInt8(ascii: "%")), !pair.contains(UInt8(ascii: "+")),
                    let equals = pair.firstIndex(of: UInt8(ascii: "=")), equals != pair.startIndex,
                    let value = String(pair[pair.index(after: equals)...])
                else { return nil }
                let key = pair[..<equals]
                let slot: WritableKeyPath<Request, String?>
                if key.elementsEqual("profile".utf8) {
                    slot = \.profile
                } else if key.elementsEqual("min_valid".utf8) {
                    slot = \.minValid
                } else if key.elementsEqual("format".utf8) {
                    slot = \.format
                } else {
                    return nil
                }
                guard request[keyPath: slot] == nil else { return nil }
                request[keyPath: slot] = value
            }
        }
        return request
    }
}

extension AgentAPI {
    /// The fast path over this API's cache and config.
    public func tokenFastPath() -> TokenFastPath {
        TokenFastPath(snapshots: cache.snapshots, profiles: profiles, clock: clock, audit: ServedTokenAudit(audit: audit))
    }
}

/// A token answer for NIO's pipeline and the same answer as the bytes on the wire (for
/// ``FrontDoor``).
struct EncodedAnswer: Sendable {
    let answer: TokenAnswer
    let wire: [UInt8]
}

/// The encoded answers of the current second, per profile and form (JSON or text), shared by all
/// connections: a client that connects once per token does not pay for encoding the JSON.
/// Only what the snapshot serves at that moment is looked up here (an entry is the answer to the
/// same ``TokenResponse``); a profile whose snapshot is gone is forgotten at its next request.
final class EncodedAnswers: Sendable {
    private struct Form: Hashable {
        let profile: String
        let text: Bool
    }

    private let answers = Mutex<[Form: (response: TokenResponse, answer: EncodedAnswer)]>([:])

    /// The answer to `response` for `profile` as text or JSON; nil when it cannot be encoded.
    func answer(_ profile: String, _ response: TokenResponse, text: Bool) -> EncodedAnswer? {
        let form = Form(profile: profile, text: text)
        if let known = answers.withLock({ $0[form] }), known.response == response { return known.answer }
        guard let answer = text ? TokenAnswer.text(response.accessToken) : try? TokenAnswer.json(response) else {
            return nil
        }
        let encoded = EncodedAnswer(answer: answer, wire: answer.wire)
        answers.withLock { $0[form] = (response, encoded) }
        return encoded
    }

    /// Drops everything kept.
    func removeAll() {
        answers.withLock { $0.removeAll() }
    }

    /// Drops what is kept for `profile` (its token is no longer served).
    func forget(_ profile: String) {
        answers.withLock { answers in
            answers[Form(profile: profile, text: false)] = nil
            answers[Form(profile: profile, text: true)] = nil
        }
    }
}

/// The fast path's `token served` lines, coalesced across connections per peer process and
/// profile (a script that opens a connection per token costs one line, not one per token): the
/// first token a peer (uid, pid and its start time, executable) gets for a profile is logged at
/// once with `count=1`; the tokens after it are counted, and the count goes out as one line with
/// the same fields at the next token once ``TokenFastPath/auditInterval`` has passed since the previous
/// line, at ``flush(now:)`` (the server calls it every interval), and at shutdown.
final class ServedTokenAudit: Sendable {
    private struct Peer: Hashable {
        let credentials: PeerCredentials
        /// With the pid, one process: a process that reuses a pid is a new peer.
        let started: UInt64?
        let executable: String?
        let profile: String
    }

    private struct Tally {
        /// Tokens not yet in the audit trail.
        var count: Int
        /// When the peer's previous line was written.
        var since: Date
    }

    private let audit: Logger
    private let tallies = Mutex<[Peer: Tally]>([:])

    init(audit: Logger) { self.audit = audit }

    /// One token for `profile` served to `peer` (whose `/proc/PID/exe` is `executable`, started at
    /// `started`) at `now`.
    func served(_ profile: String, peer: PeerCredentials, executable: String?, started: UInt64?, now: Date) {
        let key = Peer(credentials: peer, started: started, executable: executable, profile: profile)
        let due: Int? = tallies.withLock { tallies in
            guard var tally = tallies[key] else {
                tallies[key] = Tally(count: 0, since: now)
                return 1
            }
            tally.count += 1
            if now.timeIntervalSince(tally.since) >= TokenFastPath.auditInterval {
                tallies[key] = Tally(count: 0, since: now)
                return tally.count
            }
            tallies[key] = tally
            return nil
        }
        if let due { log(key, count: due) }
    }

    /// Writes every count not yet in the audit trail, and forgets the peers that took no token
    /// for an interval (their next token is logged at once again).
    func flush(now: Date) {
        let due: [(Peer, Int)] = tallies.withLock { tallies in
            var due: [(Peer, Int)] = []
            for (key, tally) in tallies {
                if tally.count > 0 {
                    due.append((key, tally.count))
                    tallies[key] = Tally(count: 0, since: now)
                } else if now.timeIntervalSince(tally.since) >= TokenFastPath.auditInterval {
                    tallies[key] = nil
                }
            }
            return due
        }
        for (key, count) in due { log(key, count: count) }
    }

    private func log(_ key: Peer, count: Int) {
        TokenRoutes.logServed(
            audit, route: "token", profile: key.profile, peer: key.credentials,
            executable: key.executable, count: count)
    }
}

/// One connection's fast path, between ``RequestLimitHandler`` and Hummingbird (so the limits and
/// the request timeout apply to its answers too).
///
/// Order on a keep-alive connection: it answers only while no request it passed on to the router
/// is still waiting for the end of its response; otherwise it passes every request on, and the
/// router answers them in order.
///
/// Audit: each token goes to ``ServedTokenAudit`` (coalesced per peer process and profile).
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
    private var held: (head: HTTPRequest, request: TokenFastPath.Request)?
    private var unflushed = false
    /// A `Connection: close` request was answered: the output is closed, nothing more is read.
    private var finished = false
    /// A `Connection: close` request went to the router: it answers that one last, so the fast
    /// path must not answer anything after it on this connection.
    private var routerCloses = false
    private var memo: TokenFastPath.ConnectionMemo?
    /// Read once, at the connection's first token.
    private lazy var executable = peer.executable
    private lazy var started = peer.startTime

    init(fastPath: TokenFastPath, peer: PeerCredentials) {
        self.fastPath = fastPath
        self.peer = peer
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        guard !finished else { return }
        switch unwrapInboundIn(data) {
        case .head(let head):
            if forwarded == 0, !routerCloses, let request = TokenFastPath.request(head) {
                held = (head, request)
                return
            }
            if head.headerFields[.connection] == "close" { routerCloses = true }
            forwarded += 1
        case .body:
            passOnHeld(context)
        case .end:
            if let request = held {
                let now = fastPath.clock.now()
                if let served = fastPath.answer(request.request, now: now, memo: &memo) {
                    held = nil
                    context.write(wrapOutboundOut(.head(served.answer.answer.head)), promise: nil)
                    context.write(wrapOutboundOut(.body(served.answer.answer.body)), promise: nil)
                    context.write(wrapOutboundOut(.end(nil)), promise: nil)
                    unflushed = true
                    fastPath.audit.served(served.profile, peer: peer, executable: executable, started: started, now: now)
                    if request.request.closes {
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
}
