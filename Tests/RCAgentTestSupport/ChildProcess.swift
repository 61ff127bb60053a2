import Foundation
import Glibc
import Subprocess

// The children of the test process start with swift-subprocess, never with Foundation's Process:
// on Linux, Process.run() reads past glibc's readdir buffer while it lists /proc/self/fd
// (swift-corelibs-foundation#5472, fixed only after Swift 6.3.1) and now and then crashed the
// whole test run.
//
// As with Foundation, a child leads a process group of its own and inherits no descriptor of
// this process but its three standard streams. Unlike a child of Foundation's Process, it starts
// with an empty signal mask and default signal dispositions, not those of the thread that
// started it (nearly every signal blocked).

/// Runs an executable to completion, feeding `stdin` (nil: /dev/null, not an empty pipe: rc-agent
/// takes a pipe on stdin for secret input) and collecting both output streams whole: all the
/// child wrote, read until it ended (a grandchild left running with them open no longer holds the
/// result back). `status` is the exit status, or the signal's number when a signal ended the
/// child (as Foundation gave it).
///
/// Never blocks the cooperative pool (2 threads here): the in-process stand-in needs it to answer
/// the child. swift-subprocess waits for the child and for its output on threads of its own.
package func runProcess(
    _ executable: String, _ arguments: [String], stdin: String? = nil, environment: [String: String]
) async throws -> CLIResult {
    let configuration = Configuration(testChild: [executable] + arguments, environment: environment)
    // No limit, as with Foundation (outputs can be large); swift-subprocess would also reserve a
    // finite limit's whole size up front, for each stream of each run. Bytes, decoded here: its
    // `.string` output decodes byte by byte, seconds for the proxy tests' 64 MiB.
    let result =
        if let stdin {
            try await Subprocess.run(
                configuration, input: .inputWriter, output: .bytes(limit: .max), error: .bytes(limit: .max)
            ) { execution in
                // A child may end without reading it all (EPIPE): that is its answer, not a failure
                // here. (swift-subprocess 1.0.2's `.string` input traps then: it never closes the
                // pipe it failed to write.)
                _ = sigpipeIgnored
                _ = try? await execution.standardInputWriter.write(stdin)
                try await execution.standardInputWriter.finish()
            }
        } else {
            try await Subprocess.run(configuration, input: .none, output: .bytes(limit: .max), error: .bytes(limit: .max))
        }
    return CLIResult(
        status: result.terminationStatus.asFoundationGaveIt, stdout: String(decoding: result.standardOutput, as: UTF8.self),
        stderr: String(decoding: result.standardError, as: UTF8.self))
}

/// Writing to a child that ended raises SIGPIPE, whose default action would end the whole test
/// run: ignored, as the agent does, so the write fails with EPIPE. Children start with default
/// dispositions all the same.
private let sigpipeIgnored: Void = { _ = signal(SIGPIPE, SIG_IGN) }()

/// A child that runs while the test goes on (a server, a download the test reads at its own pace,
/// a command on a pseudo-terminal). ``kill()`` is synchronous, so a `defer` can call it.
///
/// A task holds swift-subprocess's `run` open until the child ends (and then reaps it); a process
/// descriptor of its own tells whether the child still runs, as a pid the kernel may already have
/// given to another process cannot.
package final class ChildProcess: Sendable {
    /// Where one of the child's standard streams goes.
    package enum Stream: Sendable, Equatable {
        /// `/dev/null`.
        case null
        /// This process's own (stdout and stderr only).
        case inherited
        /// A pipe to this process: ``input`` (stdin) or ``output`` (stdout).
        case pipe
        /// Wherever stdout goes (stderr only).
        case stdout
    }

    private let pid: pid_t
    private let processDescriptor: CInt
    private let inputEnd: FileHandle?
    private let outputEnd: FileHandle?
    private let ended: Task<Int32, any Error>

    /// Starts `argv` (a path first: absolute, or relative to the working directory) with
    /// `environment` (nil: this process's); returns once it runs.
    package init(
        _ argv: [String], environment: [String: String]? = nil, stdin: Stream = .null, stdout: Stream = .null,
        stderr: Stream = .null
    ) async throws {
        precondition(
            [.null, .pipe].contains(stdin) && stdout != .stdout && stderr != .pipe,
            "unsupported streams: stdin \(stdin), stdout \(stdout), stderr \(stderr)")
        // The child's ends of its streams (swift-subprocess closes those it is told to once the
        // child started), and this process's ends of the pipes.
        let stdinPipe = try stdin == .pipe ? Self.pipe() : nil
        let stdoutPipe = try stdout == .pipe ? Self.pipe() : nil
        let childStdin = try stdinPipe?.read ?? Self.openNull(O_RDONLY)
        let childStdout = try stdoutPipe?.write ?? (stdout == .inherited ? STDOUT_FILENO : Self.openNull(O_WRONLY))
        let childStderr =
            switch stderr {
            case .stdout: try Self.check(fcntl(childStdout, F_DUPFD_CLOEXEC, 0), "dup")
            case .inherited: STDERR_FILENO
            default: try Self.openNull(O_WRONLY)
            }
        inputEnd = stdinPipe.map { FileHandle(fileDescriptor: $0.write, closeOnDealloc: true) }
        outputEnd = stdoutPipe.map { FileHandle(fileDescriptor: $0.read, closeOnDealloc: true) }

        let configuration = Configuration(testChild: argv, environment: environment)
        let started = AsyncThrowingStream<(pid: pid_t, descriptor: CInt), any Error>.makeStream()
        ended = Task {
            do {
                let result = try await Subprocess.run(
                    configuration,
                    input: .fileDescriptor(.init(rawValue: childStdin), closeAfterSpawningProcess: true),
                    output: .fileDescriptor(.init(rawValue: childStdout), closeAfterSpawningProcess: stdout != .inherited),
                    error: .fileDescriptor(.init(rawValue: childStderr), closeAfterSpawningProcess: stderr != .inherited)
                ) { execution in
                    // Returns at once: `run` then waits for the child to end.
                    let id = execution.processIdentifier
                    started.continuation.yield((id.value, fcntl(id.processDescriptor, F_DUPFD_CLOEXEC, 0)))
                    started.continuation.finish()
                }
                return result.terminationStatus.asFoundationGaveIt
            } catch {
                started.continuation.finish(throwing: error)
                throw error
            }
        }
        guard let child = try await started.stream.first(where: { _ in true }) else {
            throw ChildProcessFailure(description: "\(argv[0]) did not start")
        }
        pid = child.pid
        processDescriptor = child.descriptor
        guard processDescriptor >= 0 else {
            Glibc.kill(pid, SIGKILL)
            throw ChildProcessFailure(description: "no process descriptor for \(argv[0]) (\(pid))")
        }
    }

    deinit { close(processDescriptor) }

    /// The write end of the child's stdin (`stdin: .pipe`), open until this object goes.
    package var input: FileHandle {
        guard let inputEnd else { preconditionFailure("the child's stdin is not a pipe") }
        return inputEnd
    }

    /// The read end of the child's stdout (`stdout: .pipe`).
    package var output: FileHandle {
        guard let outputEnd else { preconditionFailure("the child's stdout is not a pipe") }
        return outputEnd
    }

    package var isRunning: Bool { !hasEnded(waitingAtMost: 0) }

    /// True once `ready` holds (checked every 20 ms for up to 10 s while the child runs).
    package func waitUntil(_ ready: () -> Bool) async throws -> Bool {
        for _ in 0..<500 where isRunning {
            if ready() { return true }
            try await Task.sleep(nanoseconds: 20_000_000)
        }
        return ready()
    }

    /// SIGKILL (if it still runs), and waits until it ended (blocking this thread for as long as
    /// the kernel takes to end it). SIGKILL ends any child at once, where a SIGTERM the child
    /// handles (as rc-agent's daemon does) would take its time.
    package func kill() {
        if isRunning { Glibc.kill(pid, SIGKILL) }
        _ = hasEnded(waitingAtMost: -1)
    }

    /// Waits for the child to end; its exit status, or the signal's number when a signal ended it.
    package func wait() async throws -> Int32 { try await ended.value }

    /// True once the child ended, waiting for that at most `milliseconds` (-1: no limit).
    private func hasEnded(waitingAtMost milliseconds: Int32) -> Bool {
        var entry = pollfd(fd: processDescriptor, events: Int16(POLLIN), revents: 0)
        while true {
            let ready = poll(&entry, 1, milliseconds)
            if ready >= 0 || errno != EINTR { return ready != 0 }
        }
    }

    /// A pipe whose ends no other child inherits (close-on-exec; Glibc's module has no `pipe2`).
    private static func pipe() throws -> (read: CInt, write: CInt) {
        var ends: [CInt] = [-1, -1]
        _ = try check(Glibc.pipe(&ends), "pipe")
        for end in ends { _ = fcntl(end, F_SETFD, FD_CLOEXEC) }
        return (ends[0], ends[1])
    }

    private static func openNull(_ mode: CInt) throws -> CInt {
        try check(open("/dev/null", mode | O_CLOEXEC), "open /dev/null")
    }

    private static func check(_ result: CInt, _ call: String) throws -> CInt {
        guard result >= 0 else {
            throw ChildProcessFailure(description: "\(call): \(String(cString: strerror(errno)))")
        }
        return result
    }
}

package struct ChildProcessFailure: Error, CustomStringConvertible {
    package let description: String
}

extension Configuration {
    /// `argv` (a path first) with `environment` (nil: this process's), in a process group of its
    /// own as Foundation's Process gave it (not the terminal's foreground group, when the tests run
    /// in one).
    fileprivate init(testChild argv: [String], environment: [String: String]?) {
        var options = PlatformOptions()
        options.processGroupID = 0
        self.init(
            executable: .path(.init(argv[0])), arguments: .init(Array(argv.dropFirst())),
            environment: environment.map { .custom(.init(uniqueKeysWithValues: $0.map { (.init(rawValue: $0)!, $1) })) }
                ?? .inherit,
            platformOptions: options)
    }
}

extension TerminationStatus {
    /// The exit status, or the signal's number for a child a signal ended (Foundation's `terminationStatus`).
    fileprivate var asFoundationGaveIt: Int32 {
        switch self {
        case .exited(let code): code
        case .signaled(let signal): signal
        }
    }
}
