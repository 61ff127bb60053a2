import ArgumentParser
import Foundation
import NIOCore
import NIOPosix

/// `rc-bench`: the measuring client behind `make bench` and `make soak` (scripts/bench.sh,
/// scripts/soak.sh). It speaks HTTP/1.1 to an agent's Unix socket and prints one line of
/// `key=value` pairs per run, for the scripts to parse. Loopback only: it never opens a TCP socket.
@main
struct RCBench: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "rc-bench",
        abstract: "Load, cold-cache, burst, bad-input and startup measurements against an rc-agent socket.",
        subcommands: [Load.self, Raw.self, Ceiling.self, Cold.self, Burst.self, BadInput.self, Startup.self])
}

/// Where the agent is and how many event-loop threads the client may use.
struct SocketOptions: ParsableArguments {
    @Option(help: "The agent's socket.")
    var socket: String

    @Option(help: "Client event-loop threads (the agent shares the machine's cores with us).")
    var threads: Int = 1

    func group() -> MultiThreadedEventLoopGroup { MultiThreadedEventLoopGroup(numberOfThreads: max(1, threads)) }

    /// Runs `script` over `connections` keep-alive connections on a group of its own, shut down
    /// afterwards whether the run succeeded or not.
    func load(
        connections: Int, requests: Int, script: [Exchange], collectTokens: Bool, maxSeconds: Double = 0
    ) async throws -> LoadRun {
        let group = group()
        do {
            let run = try await LoadRun.run(
                socket: socket, group: group, connections: connections, requests: requests, script: script,
                collectTokens: collectTokens, maxSeconds: maxSeconds)
            try? await group.shutdownGracefully()
            return run
        } catch {
            try? await group.shutdownGracefully()
            throw error
        }
    }
}

/// Keep-alive load: `connections` connections, each sending its share of `requests` one after
/// the other (closed loop). Prints throughput and latency percentiles.
struct Load: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Closed-loop keep-alive load.")
    @OptionGroup var target: SocketOptions
    @Option(help: "Concurrent keep-alive connections.") var connections: Int = 1
    @Option(help: "Requests in all.") var requests: Int = 10_000
    @Option(help: "Request target.") var path: String = "/v1/token"
    @Option(help: "Stop sending after this many seconds (0: no limit); the line says how many were sent.")
    var seconds: Double = 0
    @Option(help: "Append every distinct access_token seen to this file (keep it out of scanned dirs).")
    var tokensOut: String?

    func run() async throws {
        let run = try await target.load(
            connections: connections, requests: requests, script: [Exchange(method: .GET, uri: path, timed: true)],
            collectTokens: tokensOut != nil, maxSeconds: seconds)
        try run.saveTokens(to: tokensOut)
        print(run.summary(label: "load", extra: "connections=\(connections)"))
    }
}

/// Cold cache: `DELETE /v1/token` then a timed `GET /v1/token`, `times` times on one connection.
struct Cold: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "Cold-cache GET /v1/token latency.")
    @OptionGroup var target: SocketOptions
    @Option(help: "Cold fetches.") var times: Int = 20
    @Option(help: "Profile.") var profile: String = "default"

    func run() async throws {
        let run = try await target.load(
            connections: 1, requests: 2 * times,
            script: [
                Exchange(method: .DELETE, uri: "/v1/token?profile=\(profile)", timed: false),
                Exchange(method: .GET, uri: "/v1/token?profile=\(profile)", timed: true),
            ], collectTokens: false)
        print(run.summary(label: "cold", extra: "times=\(times)"))
    }
}

/// Single flight: `concurrent` connections are opened first, then each sends one request at the
/// same moment. Prints the statuses (the script reads the stand-in's counters).
struct Burst: AsyncParsableCommand {
    static let configuration = CommandConfiguration(abstract: "N simultaneous requests, one per connection.")
    @OptionGroup var target: SocketOptions
    @Option(help: "Simultaneous requests.") var concurrent: Int = 100
    @Option(help: "Request target.") var path: String = "/v1/token"

    func run() async throws {
        let run = try await target.load(
            connections: concurrent, requests: concurrent, script: [Exchange(method: .GET, uri: path, timed: true)],
            collectTokens: true)
        print(run.summary(label: "burst", extra: "concurrent=\(concurrent) distinct_tokens=\(run.merged.tokens.count)"))
    }
}
