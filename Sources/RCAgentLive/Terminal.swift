import RCAgentCore
import FoundationEssentials

#if canImport(Glibc)
import Glibc
#endif

/// Reading input from a person and writing to the standard streams.
///
/// Secrets are read with echo off from `/dev/tty` (never from argv), or from stdin when the
/// user pipes them in (`--client-secret-stdin`).
public enum Terminal {
    /// A stream that writes UTF-8 text without buffering.
    public struct Stream: Sendable {
        let fd: Int32
        /// Writes `text` as is.
        public func write(_ text: String) {
            var bytes = Array(text.utf8)
            var offset = 0
            while offset < bytes.count {
                let n = bytes.withUnsafeMutableBytes { Glibc.write(fd, $0.baseAddress! + offset, $0.count - offset) }
                if n < 0 { if errno == EINTR { continue }; return }
                offset += n
            }
        }
        /// True when this stream is a terminal.
        public var isTerminal: Bool { isatty(fd) == 1 }
    }

    public static let standardOutput = Stream(fd: STDOUT_FILENO)
    public static let standardError = Stream(fd: STDERR_FILENO)

    /// Asks `prompt` on the controlling terminal and reads one line, echoing it unless `hidden`.
    /// Returns nil when there is no terminal or input ended.
    public static func prompt(_ prompt: String, hidden: Bool) -> String? {
        let fd = open("/dev/tty", O_RDWR | O_NOCTTY | O_CLOEXEC)
        guard fd >= 0 else { return nil }
        defer { close(fd) }
        let tty = Stream(fd: fd)
        tty.write(prompt)
        var saved = termios()
        let restore = hidden && tcgetattr(fd, &saved) == 0
        if restore {
            var quiet = saved
            quiet.c_lflag &= ~tcflag_t(ECHO)
            quiet.c_lflag |= tcflag_t(ECHONL)
            tcsetattr(fd, TCSAFLUSH, &quiet)
        }
        defer { if restore { tcsetattr(fd, TCSAFLUSH, &saved) } }
        return readLine(fd: fd)
    }

    /// Reads all of standard input (for `--client-secret-stdin`), without the final line break.
    public static func readStandardInput(limit: Int = 64 * 1024) -> String? {
        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 4096)
        while bytes.count <= limit {
            let n = chunk.withUnsafeMutableBytes { read(STDIN_FILENO, $0.baseAddress!, $0.count) }
            if n < 0 { if errno == EINTR { continue }; return nil }
            if n == 0 { break }
            bytes.append(contentsOf: chunk[0..<n])
        }
        defer { for i in bytes.indices { bytes[i] = 0 } }
        guard bytes.count <= limit else { return nil }
        var text = String(decoding: bytes, as: UTF8.self)
        if text.hasSuffix("\r\n") { text.removeLast(2) } else if text.hasSuffix("\n") { text.removeLast() }
        return text
    }

    private static func readLine(fd: Int32) -> String? {
        var bytes: [UInt8] = []
        defer { for i in bytes.indices { bytes[i] = 0 } }
        var byte: UInt8 = 0
        while true {
            let n = read(fd, &byte, 1)
            if n < 0 { if errno == EINTR { continue }; return nil }
            if n == 0 { if bytes.isEmpty { return nil }; break }
            if byte == UInt8(ascii: "\n") { break }
            bytes.append(byte)
        }
        if bytes.last == UInt8(ascii: "\r") { bytes.removeLast() }
        return String(decoding: bytes, as: UTF8.self)
    }
}

/// Reads a secret the two ways rc-agent allows: piped on stdin, or typed at a hidden prompt.
public enum SecretInput {
    /// The secret from standard input when `fromStandardInput`, else from a hidden prompt on the
    /// terminal. Without a terminal it is a usage error that names the stdin flag.
    public static func read(fromStandardInput: Bool, prompt: String) throws -> Secret {
        if fromStandardInput {
            guard let text = Terminal.readStandardInput() else {
                throw UsageError("could not read the Client Secret from standard input")
            }
            return Secret(text)
        }
        guard let text = Terminal.prompt(prompt, hidden: true) else {
            throw UsageError(
                "no terminal to ask for the Client Secret on",
                hint: "pipe it in with --client-secret-stdin")
        }
        return Secret(text)
    }
}
