import Foundation
import RCAgentTestSupport
import RiskCloudStandIn
import Testing

extension HardeningTests {
    /// The socket API driven by HTTP clients no one here wrote: Python's `http.client` over a
    /// connected Unix socket (scripts/interop-client.py) and curl, against `rc-agent daemon` and
    /// the stand-in's upload route (which answers the SHA-256 of what it received).
    @Suite struct InteropTests {
        /// `proxy_max_body` for these tests: small, so that going over it is quick.
        static let cap = 1 << 20

        /// Sets `[defaults] proxy_max_body` in the world's config file.
        static func setProxyMaxBody(_ world: AgentWorld, _ bytes: Int) throws {
            let path = world.sandbox.configPath
            let text = (try? String(contentsOfFile: path, encoding: .utf8)) ?? ""
            try ("[defaults]\nproxy_max_body = \(bytes)\n\n" + text).write(toFile: path, atomically: true, encoding: .utf8)
        }

        @Test func pythonHTTPClient() async throws {
            try await AgentWorld.run { world in
                try Self.setProxyMaxBody(world, Self.cap)
                _ = try await world.daemon()
                let script = IsolatedRun.repository.appendingPathComponent("scripts/interop-client.py").path
                let result = try await runProcess(
                    "/usr/bin/python3", [script, world.socket, world.profile, String(Self.cap)],
                    environment: world.sandbox.environment)
                world.record(result)
                #expect(result.status == 0, "\(result)")
                let passed = Set(result.stdout.split(separator: "\n").filter { $0.hasPrefix("ok ") }.map { String($0.dropFirst(3)) })
                let expected: Set<String> = [
                    "token-json", "token-text", "keep-alive", "error-document", "upload-content-length", "upload-chunked",
                    "keep-alive-after-upload", "too-large-content-length", "too-large-chunked", "headers-too-large",
                    "expect-continue", "expect-unknown-profile", "expect-too-large",
                ]
                #expect(passed == expected, "\(result)")
                let uploads = await world.state.uploads
                #expect(uploads.count == 3, "three uploads reached the tenant, none of those over the cap: \(uploads)")
            }
        }

        @Test func curlUploadsAndRefusals() async throws {
            try await AgentWorld.run { world in
                try Self.setProxyMaxBody(world, Self.cap)
                _ = try await world.daemon()
                let directory = world.sandbox.root + "/state"
                // A multipart document made here, sent as it is: what the tenant gets must be it.
                let boundary = "curl-interop-boundary"
                var document = Data("--\(boundary)\r\nContent-Disposition: form-data; name=\"file\"; filename=\"a.bin\"\r\n\r\n".utf8)
                document.append(Data((0..<(200 * 1024)).map { UInt8(truncatingIfNeeded: $0 &* 7919 >> 3) }))
                document.append(Data("\r\n--\(boundary)--\r\n".utf8))
                let file = directory + "/upload.bin"
                try document.write(to: URL(fileURLWithPath: file))
                let digest = try await runProcess("/usr/bin/openssl", ["dgst", "-sha256", "-r", file], environment: [:])
                let expected = String(digest.stdout.prefix(64))
                #expect(expected.count == 64, "\(digest)")

                let url = "http://localhost/v1/proxy/\(world.profile)/api/v2/uploads"
                let upload = try await runProcess(
                    "/usr/bin/curl",
                    ["-sS", "--unix-socket", world.socket, "--data-binary", "@" + file,
                     "-H", "Content-Type: multipart/form-data; boundary=\(boundary)", "-H", "Expect: 100-continue",
                     "-w", "\n%{http_code}", url],
                    environment: world.sandbox.environment)
                world.record(upload)
                #expect(upload.stdout.hasSuffix("\n201"), "\(upload)")
                #expect(upload.stdout.contains(expected), "the tenant's checksum is the file's: \(upload)")
                #expect(await world.state.uploads.last?.sha256 == expected)
                #expect(await world.state.uploads.last?.bytes == document.count)

                // Over the cap: curl sees the 413 and its document.
                let big = directory + "/big.bin"
                try Data(count: Self.cap + 4096).write(to: URL(fileURLWithPath: big))
                let refused = try await runProcess(
                    "/usr/bin/curl",
                    ["-sS", "--unix-socket", world.socket, "--data-binary", "@" + big,
                     "-H", "Content-Type: application/octet-stream", "-w", "\n%{http_code}", url],
                    environment: world.sandbox.environment)
                world.record(refused)
                #expect(refused.stdout.hasSuffix("\n413"), "\(refused)")
                #expect(refused.stdout.contains("\"request_too_large\""), "\(refused)")
                #expect(refused.stdout.contains("\(Self.cap) bytes"), "the message names the limit: \(refused)")
                #expect(await world.state.uploads.count == 1, "the refused body never reached the tenant")
            }
        }

        /// `VmRSS` and `VmHWM` (peak) of `pid`, in KiB.
        static func memory(of pid: pid_t) throws -> (rss: Int, peak: Int) {
            let status = try String(contentsOfFile: "/proc/\(pid)/status", encoding: .utf8)
            func field(_ name: String) -> Int {
                let line = status.split(separator: "\n").first { $0.hasPrefix(name + ":") } ?? ""
                return Int(line.split(separator: " ").dropFirst().first ?? "") ?? -1
            }
            return (field("VmRSS"), field("VmHWM"))
        }

        /// A 64 MiB upload and a 64 MiB download through the proxy, with the default
        /// `proxy_max_body`: the agent's peak RSS grows by far less than either (docs/RELIABILITY.md
        /// has the figures; a buffered body would add 64 MiB).
        @Test func a64MiBUploadAndDownloadKeepTheAgentsMemoryBounded() async throws {
            try await AgentWorld.run { world in
                let daemon = try await world.daemon()
                let url = "http://localhost/v1/proxy/\(world.profile)/api/v2"
                // Warm up: the proxy's HTTP client and the token exist before the baseline.
                #expect(try await world.curl("/v1/proxy/\(world.profile)/api/v2/records").status == 200)
                let before = try Self.memory(of: daemon.pid)

                let file = world.sandbox.root + "/state/64MiB.bin"
                try Data(count: 64 << 20).write(to: URL(fileURLWithPath: file))
                let upload = try await runProcess(
                    "/usr/bin/curl",
                    ["-sS", "--unix-socket", world.socket, "--data-binary", "@" + file,
                     "-H", "Content-Type: application/octet-stream", "-w", "\n%{http_code}", url + "/uploads"],
                    environment: world.sandbox.environment)
                world.record(upload)
                #expect(upload.stdout.hasSuffix("\n201"), "\(upload)")
                #expect(await world.state.uploads.last?.bytes == 64 << 20)
                try? FileManager.default.removeItem(atPath: file)
                let afterUpload = try Self.memory(of: daemon.pid)

                await world.state.setRecordCount(1000)
                await world.state.setRecordPadding(bytes: 68 * 1024)
                let download = try await runProcess(
                    "/usr/bin/curl",
                    ["-sS", "--unix-socket", world.socket, "-o", "/dev/null", "-w", "%{http_code} %{size_download}",
                     url + "/records?size=1000"],
                    environment: world.sandbox.environment)
                world.record(download)
                let fields = download.stdout.split(separator: " ")
                #expect(fields.first == "200", "\(download)")
                #expect((fields.last.flatMap { Int($0) } ?? 0) > 64 << 20, "\(download)")
                let after = try Self.memory(of: daemon.pid)

                print(
                    "rc-agent memory while proxying (KiB): before VmRSS \(before.rss) VmHWM \(before.peak); "
                        + "after a 64 MiB upload VmRSS \(afterUpload.rss) VmHWM \(afterUpload.peak); "
                        + "after a 64 MiB download VmRSS \(after.rss) VmHWM \(after.peak)")
                #expect(after.peak - before.peak < 32 * 1024, "peak RSS grew by \(after.peak - before.peak) KiB")
            }
        }
    }
}
