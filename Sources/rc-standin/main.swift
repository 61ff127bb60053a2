// rc-standin — a local Risk Cloud stand-in for tests and `make demo`. Never installed; never
// point rc-agent at anything but loopback.
//
//   rc-standin [--port N] [--clients-file PATH|-] [--client ID:SECRET]... [--token-lifetime S]
//              [--restricted ID]... [--tls-cert PEM --tls-key PEM]
//
// Binds 127.0.0.1 only (port 0 = any free port), prints `port=PORT` on stdout once listening
// and runs until SIGTERM or SIGINT. With --tls-cert/--tls-key it speaks HTTPS with that
// certificate chain (log in with `--url https://localhost:PORT` and the CA in `ca_file`). Clients: prefer `--clients-file` (one `ID:SECRET` per
// line, `#` comments; `-` reads stdin) or the control API below. `--client ID:SECRET` puts the
// secret in argv: acceptable only because this tool serves made-up test secrets — never real ones.
//
// Risk Cloud endpoints (shared/reference/risk-cloud-api-facts.md):
//   POST /api/v1/account/token   Basic base64("ID:SECRET") → 200 {access_token, token_type,
//                                expires_in, scope}; bad/missing/Bearer → 401 with empty body;
//                                a body that is not JSON → 400.
//   GET  /api/v2/records         Bearer; ?page (≥0) &size (1…1000), else 400 {property,value,message}
//   GET  /api/v2/applications    same, and 403 for a restricted client
//   anything else                404 {"status":404,"message":…}
//
// Control API (JSON bodies; answers 204, JSON, or 400 on a bad body):
//   POST /_standin/clients         {"id","secret","restricted":false}   add or replace a client
//   POST /_standin/reset-secret    {"id","secret"}    new secret; old one and its tokens stop working
//   POST /_standin/config          {"token_lifetime":S, "reuse_live_token":bool, "record_count":N,
//                                   "record_padding":BYTES}  (padded record pages are streamed)
//   POST /_standin/fail            {"kind":"status|retry_after|delay|garbage|close|hang",
//                                   "status":500, "body":"…", "seconds":N, "times":N (default: forever),
//                                   "target":"token|api|all" (default token)}
//   POST /_standin/clear-failures
//   POST /_standin/revoke-tokens   every issued token answers 401 from now on
//   GET  /_standin/counters        {"token_requests","api_requests","minted_tokens"}
//   GET  /_standin/tokens          {"tokens":[…]} every token minted (leak scans look for them)
import ArgumentParser
import Dispatch
import Foundation
import RiskCloudStandIn

struct StandInCommand: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "rc-standin", abstract: "A local Risk Cloud stand-in for rc-agent tests and demos.")

    @Option(help: "Port on 127.0.0.1 (0: any free port).")
    var port: Int = 0

    @Option(help: "File with one ID:SECRET per line ('-' reads stdin).")
    var clientsFile: String?

    @Option(name: .customLong("client"), help: "A test client ID:SECRET (test secrets only: argv is visible).")
    var clients: [String] = []

    @Option(name: .customLong("restricted"), help: "A client ID that gets 403 on /api/v2/applications.")
    var restricted: [String] = []

    @Option(help: "Lifetime of new tokens in seconds.")
    var tokenLifetime: Int?

    @Option(name: .customLong("tls-cert"), help: "Serve HTTPS with this PEM certificate chain (needs --tls-key).")
    var tlsCertificate: String?

    @Option(name: .customLong("tls-key"), help: "The PEM private key of --tls-cert.")
    var tlsKey: String?

    func validate() throws {
        guard (tlsCertificate == nil) == (tlsKey == nil) else {
            throw ValidationError("--tls-cert and --tls-key go together")
        }
    }

    func run() async throws {
        let state = StandInState()
        var lines = clients
        if let clientsFile {
            let text: String
            if clientsFile == "-" {
                text = String(decoding: FileHandle.standardInput.readDataToEndOfFile(), as: UTF8.self)
            } else {
                text = try String(contentsOfFile: clientsFile, encoding: .utf8)
            }
            lines += text.split(whereSeparator: \.isNewline).map(String.init)
                .filter { !$0.hasPrefix("#") && !$0.trimmingCharacters(in: .whitespaces).isEmpty }
        }
        for line in lines {
            guard let colon = line.firstIndex(of: ":") else {
                throw ValidationError("a client must be ID:SECRET")
            }
            let id = String(line[..<colon])
            await state.addClient(
                id: id, secret: String(line[line.index(after: colon)...]), restricted: restricted.contains(id))
        }
        if let tokenLifetime { await state.setTokenLifetime(seconds: tokenLifetime) }

        let tls = tlsCertificate.flatMap { chain in tlsKey.map { StandInTLS(certificateChainFile: chain, privateKeyFile: $0) } }
        let server = Task {
            try await runStandIn(state: state, port: port, tls: tls) { bound in
                // Unbuffered write: the parent reads this line while we keep running.
                FileHandle.standardOutput.write(Data("port=\(bound)\n".utf8))
            }
        }
        var sources: [any DispatchSourceSignal] = []
        for sig in [SIGTERM, SIGINT] {
            signal(sig, SIG_IGN)
            let source = DispatchSource.makeSignalSource(signal: sig, queue: .global())
            source.setEventHandler { server.cancel() }
            source.resume()
            sources.append(source)
        }
        do {
            try await server.value
        } catch is CancellationError {}
        withExtendedLifetime(sources) {}
    }
}

// Not `StandInCommand.main()`: from a top-level main.swift that resolves to the synchronous
// entry point, which refuses to run an async command on Linux.
do {
    let command = try StandInCommand.parse()
    try await command.run()
} catch {
    StandInCommand.exit(withError: error)
}
