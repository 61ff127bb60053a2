import ArgumentParser
import Foundation

#if canImport(Glibc)
import Glibc
import RCAgentCore
#endif

/// Startup time: spawns `COMMAND…` (an agent told to listen on `--socket`), polls the socket
/// every 0.5 ms until a connection is accepted and `GET /healthz` answers, then stops it with
/// SIGTERM. Repeats `runs` times; prints min/median/max and the RSS right after readiness.
struct Startup: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Time from spawn to the first accepted connection.")
    @Option(help: "The socket the command listens on.") var socket: String
    @Option(help: "Runs.") var runs: Int = 10
    @Argument(parsing: .captureForPassthrough, help: "The agent command line.") var command: [String]

    func run() async throws {
        let argv = command.first == "--" ? Array(command.dropFirst()) : command
        guard !argv.isEmpty else { throw ValidationError("give the agent command after --") }
        var times: [Double] = []
        var rss: [Int] = []
        for _ in 0..<runs {
            let start = DispatchTime.now().uptimeNanoseconds
            let pid = try Self.spawn(argv)
            var ready = false
            let deadline = start + 20_000_000_000
            while DispatchTime.now().uptimeNanoseconds < deadline {
                if Self.healthz(socket) { ready = true; break }
                usleep(500)
            }
            let elapsed = Double(DispatchTime.now().uptimeNanoseconds - start) / 1e6
            if ready {
                times.append(elapsed)
                rss.append(RSSSampler.rssKB(pid))
            }
            kill(pid, SIGTERM)
            var status: Int32 = 0
            while waitpid(pid, &status, 0) == -1 && errno == EINTR {}
        }
        times.sort()
        guard !times.isEmpty else {
            print("startup runs=\(runs) ready=0")
            throw ExitCode.failure
        }
        let median = times[times.count / 2]
        print(
            "startup runs=\(runs) ready=\(times.count) min_ms=\(String(format: "%.1f", times[0])) "
                + "median_ms=\(String(format: "%.1f", median)) max_ms=\(String(format: "%.1f", times[times.count - 1])) "
                + "rss_at_ready_kb=\(rss.sorted()[rss.count / 2])")
    }

    /// The agent, spawned with an empty signal mask and default dispositions (SIGTERM must reach it).
    static func spawn(_ argv: [String]) throws -> pid_t {
        do {
            return try ProcessSpawn.spawn(path: argv[0], argv: argv)
        } catch {
            throw ValidationError(error.description)
        }
    }

    /// One blocking `GET /healthz` over the socket; true on a 200.
    static func healthz(_ path: String) -> Bool {
        let fd = Glibc.socket(AF_UNIX, Int32(SOCK_STREAM.rawValue), 0)
        guard fd >= 0 else { return false }
        defer { close(fd) }
        var address = sockaddr_un()
        address.sun_family = sa_family_t(AF_UNIX)
        let bytes = Array(path.utf8)
        guard bytes.count < MemoryLayout.size(ofValue: address.sun_path) else { return false }
        withUnsafeMutableBytes(of: &address.sun_path) { raw in
            raw.copyBytes(from: bytes)
            raw[bytes.count] = 0
        }
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(fd, $0, socklen_t(MemoryLayout<sockaddr_un>.size)) }
        }
        guard connected == 0 else { return false }
        let request = Array("GET /healthz HTTP/1.1\r\nHost: localhost\r\nConnection: close\r\n\r\n".utf8)
        guard write(fd, request, request.count) == request.count else { return false }
        var buffer = [UInt8](repeating: 0, count: 64)
        let n = read(fd, &buffer, buffer.count)
        return n >= 12 && String(decoding: buffer[0..<12], as: UTF8.self) == "HTTP/1.1 200"
    }
}
