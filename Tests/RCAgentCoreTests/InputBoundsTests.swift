import Foundation
@testable import RCAgentClient
import RCAgentCore
@testable import RCAgentDaemon
import RCAgentTestSupport
import RiskCloudStandIn
import Testing

/// What `rc-agent api` accepts and prints: header errors that never show a value, request bodies
/// refused by size before they are read, `--paginate` bounded in total bytes, and tenant text made
/// safe for a terminal.
@Suite struct InputBoundsTests {
    static func request(data: String? = nil, headers: [String] = [], stdin: Data = Data()) throws -> APIRequest {
        try APIRequest(
            method: nil, path: "/api/v2/records", data: data, headers: headers, paginate: false, include: false,
            fail: false, pretty: false, readStandardInput: { stdin.prefix($0) })
    }

    static func usageMessage(_ body: () throws -> Void) -> String? {
        do {
            try body()
            return nil
        } catch let error as UsageError {
            return error.message + " " + (error.hint ?? "")
        } catch {
            return "\(error)"
        }
    }

    @Test(arguments: [
        "X-Api-Key do-not-echo-4f1c",  // no ':'
        "X-Api Key: do-not-echo-4f1c",  // not a header name
        "do-not-echo-4f1c",
        "Bearer do-not-echo-4f1c: x",
    ])
    func headerErrorsNeverShowTheArgument(_ raw: String) throws {
        let message = try #require(Self.usageMessage { _ = try Self.request(headers: ["Accept: text/plain", raw]) })
        #expect(message.contains("-H option #2"), "\(message)")
        #expect(!message.contains("do-not-echo"), "\(message)")
        #expect(!message.contains("4f1c"), "\(message)")
    }

    @Test func headerErrorsNameTheHeader() throws {
        let reserved = try #require(Self.usageMessage { _ = try Self.request(headers: ["Authorization: Basic do-not-echo"]) })
        #expect(reserved.contains("Authorization") && !reserved.contains("do-not-echo"), "\(reserved)")
        let control = try #require(Self.usageMessage { _ = try Self.request(headers: ["X-Token: do-not\u{01}-echo"]) })
        #expect(control.contains("X-Token") && !control.contains("do-not"), "\(control)")
    }

    /// A sparse file past the limit: refused with its size (which only a stat gives) before a byte is read.
    @Test func aBodyFileIsRefusedByItsSize() throws {
        let path = FileManager.default.temporaryDirectory.appendingPathComponent("big-\(UUID().uuidString)").path
        #expect(FileManager.default.createFile(atPath: path, contents: nil))
        defer { try? FileManager.default.removeItem(atPath: path) }
        let size = APIRequest.maximumBodyBytes + 4096
        #expect(truncate(path, off_t(size)) == 0)
        let message = try #require(Self.usageMessage { _ = try Self.request(data: "@" + path) })
        #expect(message.contains("\(path) is \(size) bytes"), "\(message)")
        #expect(message.contains("at most 16 MiB"), "\(message)")

        #expect(truncate(path, off_t(APIRequest.maximumBodyBytes)) == 0)
        #expect(try Self.request(data: "@" + path).body?.count == APIRequest.maximumBodyBytes)
    }

    @Test func standardInputIsReadOnlyUpToTheLimit() throws {
        let big = Data(count: APIRequest.maximumBodyBytes + 10)
        let message = try #require(Self.usageMessage { _ = try Self.request(data: "-", stdin: big) })
        #expect(message.contains("larger than 16 MiB"), "\(message)")
        #expect(try Self.request(data: "-", stdin: Data("{}".utf8)).body == Array("{}".utf8))
    }

    /// 45 records in pages of 10 (about 1 KB each) against a 1500-byte budget: refused after the
    /// second page; the same request with the default budget collects all 45.
    @Test func paginateStopsAtItsTotalByteLimit() async throws {
        let state = StandInState()
        await state.setRecordCount(45)
        try await InProcessAgent.withAgent(state: state) { agent, state, _ in
            let tokens = CachedTokenSource(cache: agent.cache, clock: SystemClock())
            let request = try APIRequest(
                method: nil, path: "/api/v2/records?size=10", data: nil, headers: [], paginate: true, include: false,
                fail: false, pretty: false, readStandardInput: { _ in Data() })
            let bounded = APIRunner(
                profile: "default", tokens: tokens, transport: agent.client, clock: SystemClock(), maximumPaginatedBytes: 1500)
            let message = await Self.asyncUsageMessage { _ = try await bounded.run(request) }
            #expect(message?.contains("--paginate stopped: the pages add up to more than") == true, "\(message ?? "no error")")
            #expect(await state.apiRequestCount == 2)

            let whole = APIRunner(profile: "default", tokens: tokens, transport: agent.client, clock: SystemClock())
            let output = try await whole.run(request)
            let items = try JSONSerialization.jsonObject(with: Data(output.stdout)) as? [Any]
            #expect(items?.count == 45)
        }
    }

    static func asyncUsageMessage(_ body: () async throws -> Void) async -> String? {
        do {
            try await body()
            return nil
        } catch let error as UsageError {
            return error.message
        } catch {
            return "\(error)"
        }
    }

    @Test func tenantTextLosesTerminalEscapesAndControlCharacters() {
        let hostile = "\u{1B}]0;owned title\u{07}\u{1B}[2J\u{1B}[31mred\u{1B}[0m \u{9B}2Jcsi\u{08}\u{08}back "
            + "bell\u{07} \u{202E}txet\u{202C} nul\u{00}end \u{1B}Pdcs"
        let cleaned = ResponseExcerpt.clean(hostile)
        for scalar in cleaned.unicodeScalars {
            #expect(scalar.value >= 0x20 && !(0x7F...0x9F).contains(scalar.value), "U+\(String(scalar.value, radix: 16)) in \(cleaned)")
            #expect(!(0x202A...0x202E).contains(scalar.value))
        }
        #expect(!cleaned.contains("owned title"), "the OSC payload is dropped: \(cleaned)")
        for word in ["red", "csi", "back", "bell", "txet", "nul", "end"] {
            #expect(cleaned.contains(word), "\(word) kept: \(cleaned)")
        }
        let body = Array(#"{"message":"bad \u001b[1mfield\u001b[0m"}"#.utf8)
        #expect(ResponseExcerpt.jsonMessage(body) == "bad field")
    }
}
