import ArgumentParser
import Foundation
import RCAgentCore

/// `rc-agent status [--json]`
struct Status: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Show profiles, stored credentials and keyring state.",
        discussion: "Exits with the code of the worst problem found: 5 keyring locked or unavailable, 2 not logged in.")

    @OptionGroup var global: GlobalOptions

    @Flag(help: "Print one stable JSON document.")
    var json = false

    func run() async throws {
        try await runReportingErrors {
            let settings = try global.settings()
            let report = await StatusReport.collect(
                settings: settings, onlyProfile: settings.profileExplicit ? settings.profile : nil,
                store: LibSecretStore(timeout: settings.keyringTimeout), now: Date())
            Terminal.standardOutput.write(json ? report.json() + "\n" : report.render())
            return report.exitStatus
        }
    }
}
