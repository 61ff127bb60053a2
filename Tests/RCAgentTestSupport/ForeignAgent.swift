import Foundation
import RCAgentCore

#if canImport(Glibc)
import Glibc
#endif

/// A fake agent run as another uid (root only: `setpriv`): it listens on a Unix socket in a
/// directory that uid owns, answers every request as an agent would — with its own URL and token —
/// and prints `request: FIRST-LINE` for each request it receives, so a test can tell whether
/// anything was sent to it.
package final class ForeignAgent: @unchecked Sendable {
    /// The directory the foreign uid owns (mode 0755 unless moved).
    package let directory: String
    /// Where it listens (until ``move(to:)``).
    package private(set) var socket: String
    private let process: BackgroundProcess

    /// The URL and token it hands out.
    package static let url = "https://attacker.example"
    package static let token = "token-from-a-fake-agent"

    /// /usr/bin/python3, not the first on PATH: that one is a per-user shim other users cannot read.
    private static let script = """
        import socket, sys
        path = sys.argv[1]
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.bind(path)
        s.listen(64)
        print("listening", flush=True)
        body = b'{"access_token":"\(token)","token_type":"Bearer","expires_at":"2099-01-01T00:00:00Z",' \\
            b'"expires_in":999999,"profile":"default","url":"\(url)","pid":1,"version":"0","uptime_seconds":1,' \\
            b'"socket":"x","profiles":[]}'
        while True:
            c, _ = s.accept()
            c.settimeout(5)
            try:
                data = c.recv(65536)
            except Exception:
                data = b""
            if data:
                print("request: %s" % data.split(b"\\r\\n")[0].decode("latin-1"), flush=True)
                c.sendall(b"HTTP/1.1 200 OK\\r\\nContent-Type: application/json\\r\\nConnection: close\\r\\n"
                          + b"Content-Length: %d\\r\\n\\r\\n" % len(body) + body)
            c.close()
        """

    /// Starts the fake agent as `uid` in a new directory under /tmp (owned by `uid`, mode
    /// `mode`), and waits until it listens. Its output goes to `logPath`.
    package init(uid: UInt32, mode: mode_t = 0o755, logPath: String) async throws {
        directory = "/tmp/rc-foreign-" + String(UUID().uuidString.prefix(8)).lowercased()
        guard mkdir(directory, 0o700) == 0, chown(directory, uid, uid) == 0, chmod(directory, mode) == 0 else {
            throw SocketSetupError("cannot prepare \(directory): \(String(cString: strerror(errno)))")
        }
        socket = directory + "/agent.sock"
        process = try BackgroundProcess(
            "/usr/bin/setpriv",
            ["--reuid=\(uid)", "--regid=\(uid)", "--clear-groups", "/usr/bin/python3", "-c", Self.script, socket],
            environment: ["PATH": "/usr/bin:/bin", "LANG": "C.UTF-8"], logPath: logPath)
        for _ in 0..<600 where !process.log.contains("listening") {
            if process.exitStatus != nil { break }
            try await Task.sleep(nanoseconds: 50_000_000)
        }
        guard process.log.contains("listening") else {
            stop()
            throw SocketSetupError("the fake agent did not start:\n\(process.log)")
        }
    }

    /// Moves the listening socket file to `path` (the listener keeps serving it there).
    package func move(to path: String) throws {
        guard rename(socket, path) == 0 else {
            throw SocketSetupError("cannot move \(socket) to \(path): \(String(cString: strerror(errno)))")
        }
        socket = path
    }

    /// The request lines it received.
    package var requests: [String] {
        process.log.split(separator: "\n").filter { $0.hasPrefix("request: ") }.map(String.init)
    }

    /// Ends it and removes its directory and socket.
    package func stop() {
        process.kill()
        unlink(socket)
        try? FileManager.default.removeItem(atPath: directory)
    }
}
