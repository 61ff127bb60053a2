import ArgumentParser
import FoundationEssentials
import Glibc
import RCAgentClient
import RCAgentCore
import RCAgentDaemon
import RCAgentLive

/// `rc-agent api [-X METHOD] PATH [-d @FILE|-d -|-d JSON] [-H 'K: V']… [--paginate] [--include] [--fail]`
struct Api: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "api",
        abstract: "Call the Risk Cloud API with the agent's token (like `gh api`).",
        discussion: """
            PATH is relative to the profile's tenant, e.g. /api/v2/records. The token comes from the agent \
            (started on demand) and is never printed; on a 401 the agent fetches a new one and the request \
            is sent once more. The body goes to stdout (pretty JSON on a terminal, raw otherwise). A non-2xx \
            answer: body on stdout, diagnosis on stderr, exit 1 (22 with --fail). An Authorization header \
            given with -H is refused: rc-agent sets it.
            """)

    @OptionGroup var global: GlobalOptions
    @OptionGroup var agent: AgentOptions
    @OptionGroup var prompt: PromptOption

    @Option(name: [.customShort("X"), .customLong("method")], help: "HTTP method (default GET, or POST with -d).")
    var method: String?

    @Option(name: [.customShort("d"), .customLong("data")], help: "Request body: @FILE, - for stdin, or the JSON itself.")
    var data: String?

    @Option(name: [.customShort("H"), .customLong("header")], help: "Extra header 'Name: value' (repeatable).")
    var headers: [String] = []

    @Flag(help: "Follow v2 pages (links.next) and print one JSON array of all content items (GET only).")
    var paginate = false

    @Flag(name: [.customShort("i"), .long], help: "Print the status line and response headers first.")
    var include = false

    @Flag(help: "Exit 22 instead of 1 on a non-2xx answer (like curl --fail).")
    var fail = false

    @Argument(help: "Path relative to the tenant, e.g. /api/v2/records?size=50.")
    var path: String

    func run() async throws {
        var exitCode: Int32 = 0
        try await runReportingErrors {
            let settings = try global.settings()
            let request = try APIRequest(
                method: method, path: path, data: data, headers: headers, paginate: paginate, include: include,
                fail: fail, pretty: Terminal.standardOutput.isTerminal,
                readStandardInput: { Data((try? FileDescriptorIO.read(STDIN_FILENO, upTo: $0)) ?? []) })
            let output = try await agent.withTokens(settings, prompt: prompt) { tokens in
                try await LiveEnvironment(settings).withAPIRunner(tokens: tokens) { try await $0.run(request) }
            }
            FileDescriptorIO.write(STDOUT_FILENO, output.stdout)
            Terminal.standardError.write(output.stderr)
            exitCode = output.exitCode
            return .ok
        }
        if exitCode != 0 { throw ExitCode(exitCode) }
    }
}
