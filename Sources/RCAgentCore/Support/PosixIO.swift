import Glibc

/// Blocking work on a thread of its own (`pthread`), never on the cooperative pool: what
/// `Thread.detachNewThread` did, without full Foundation.
package enum DetachedThread {
    /// Runs `body` on a new detached thread (on this one when no thread can be made).
    package static func run(_ body: @escaping @Sendable () -> Void) {
        if !start(body) { body() }
    }

    /// Starts `body` on a new detached thread; false when no thread could be made.
    package static func start(_ body: @escaping @Sendable () -> Void) -> Bool {
        let box = Unmanaged.passRetained(Body(body)).toOpaque()
        var thread = pthread_t()
        let started = pthread_create(&thread, nil, { raw in
            let body = Unmanaged<Body>.fromOpaque(raw!).takeRetainedValue()
            body.run()
            return nil
        }, box)
        guard started == 0 else {
            Unmanaged<Body>.fromOpaque(box).release()
            return false
        }
        pthread_detach(thread)
        return true
    }

    private final class Body: Sendable {
        let run: @Sendable () -> Void
        init(_ run: @escaping @Sendable () -> Void) { self.run = run }
    }
}

/// Whole reads and writes on a file descriptor (what `FileHandle` did).
package enum FileDescriptorIO {
    /// Reads until end of file or `limit` bytes; throws the `errno` text.
    package static func read(_ fd: Int32, upTo limit: Int) throws(FileDescriptorIOError) -> [UInt8] {
        var bytes: [UInt8] = []
        var chunk = [UInt8](repeating: 0, count: 64 * 1024)
        while bytes.count < limit {
            let wanted = min(chunk.count, limit - bytes.count)
            let n = chunk.withUnsafeMutableBytes { Glibc.read(fd, $0.baseAddress!, wanted) }
            if n < 0 {
                if errno == EINTR { continue }
                throw FileDescriptorIOError(message: String(cString: strerror(errno)))
            }
            if n == 0 { break }
            bytes.append(contentsOf: chunk[0..<n])
        }
        return bytes
    }

    /// Writes all of `bytes`; stops quietly when the reader has gone.
    package static func write(_ fd: Int32, _ bytes: [UInt8]) {
        writeAll(bytes) { Glibc.write(fd, $0, $1) }
    }

    /// ``write(_:_:)`` on a socket, with `MSG_NOSIGNAL`: a reader that has gone raises no SIGPIPE
    /// in this process.
    package static func send(_ fd: Int32, _ bytes: [UInt8]) {
        writeAll(bytes) { Glibc.send(fd, $0, $1, Int32(MSG_NOSIGNAL)) }
    }

    private static func writeAll(_ bytes: [UInt8], _ write: (UnsafeRawPointer, Int) -> Int) {
        var offset = 0
        while offset < bytes.count {
            let n = bytes.withUnsafeBytes { write($0.baseAddress! + offset, $0.count - offset) }
            if n < 0 { if errno == EINTR { continue }; return }
            offset += n
        }
    }
}

/// A failed read: the C library's text for `errno`.
package struct FileDescriptorIOError: Error, CustomStringConvertible {
    package let message: String
    package var description: String { message }
}
