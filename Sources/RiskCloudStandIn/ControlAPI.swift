import Foundation
import Hummingbird

/// The `/_standin/…` routes that let another process (integration tests, `make demo`) drive a
/// running `rc-standin`. Bodies are JSON objects; answers are 204 or JSON; mistakes are 400.
/// The route list is documented at the top of Sources/rc-standin/main.swift.
struct ControlAPI {
    let state: StandInState

    func respond(method: HTTPRequest.Method, path: String, body: Data) async -> Response {
        let object = (try? JSONSerialization.jsonObject(with: body.isEmpty ? Data("{}".utf8) : body)) as? [String: Any]
        guard let object else { return Self.bad("the body must be a JSON object") }
        switch (method, path) {
        case (.get, "/_standin/counters"):
            return StandInResponder.json(.ok, [
                "token_requests": await state.tokenRequestCount,
                "api_requests": await state.apiRequestCount,
                "minted_tokens": await state.mintedTokenCount,
            ])
        case (.get, "/_standin/tokens"):
            return StandInResponder.json(.ok, ["tokens": await state.mintedTokens])
        case (.post, "/_standin/clients"):
            guard let id = object["id"] as? String, let secret = object["secret"] as? String else {
                return Self.bad("need {\"id\": …, \"secret\": …, \"restricted\": false}")
            }
            await state.addClient(id: id, secret: secret, restricted: object["restricted"] as? Bool ?? false)
        case (.post, "/_standin/reset-secret"):
            guard let id = object["id"] as? String, let secret = object["secret"] as? String else {
                return Self.bad("need {\"id\": …, \"secret\": …}")
            }
            await state.resetSecret(clientID: id, newSecret: secret)
        case (.post, "/_standin/config"):
            if let lifetime = object["token_lifetime"] as? Int { await state.setTokenLifetime(seconds: lifetime) }
            if let reuse = object["reuse_live_token"] as? Bool { await state.setReuseLiveToken(reuse) }
            if let count = object["record_count"] as? Int { await state.setRecordCount(count) }
            if let padding = object["record_padding"] as? Int { await state.setRecordPadding(bytes: padding) }
        case (.post, "/_standin/fail"):
            guard let failure = Self.failure(from: object) else {
                return Self.bad(
                    "need {\"kind\": status|retry_after|delay|garbage|close|hang, \"status\", \"body\", \"seconds\", \"times\", \"target\": token|api|all}"
                )
            }
            guard let target = StandInTarget(rawValue: object["target"] as? String ?? "token") else {
                return Self.bad("target must be token, api or all")
            }
            await state.inject(failure, times: object["times"] as? Int ?? Int.max, target: target)
        case (.post, "/_standin/clear-failures"):
            await state.clearFailures()
        case (.post, "/_standin/revoke-tokens"):
            await state.revokeAllTokens()
        default:
            return StandInResponder.json(.notFound, ["status": 404, "message": "no control route \(method) \(path)"])
        }
        return Response(status: .noContent)
    }

    static func failure(from object: [String: Any]) -> StandInFailure? {
        switch object["kind"] as? String {
        case "status":
            guard let status = object["status"] as? Int, (100...599).contains(status) else { return nil }
            return .status(status, body: object["body"] as? String)
        case "retry_after": return .retryAfter(seconds: object["seconds"] as? Int ?? 1)
        case "delay":
            guard let seconds = (object["seconds"] as? NSNumber)?.doubleValue else { return nil }
            return .delay(seconds: seconds)
        case "garbage": return .garbage
        case "close": return .closeConnection
        case "hang": return .hang
        default: return nil
        }
    }

    static func bad(_ message: String) -> Response {
        StandInResponder.json(.badRequest, ["status": 400, "message": message])
    }
}
