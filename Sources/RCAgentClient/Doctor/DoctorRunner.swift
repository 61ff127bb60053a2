import FoundationEssentials
import RCAgentCore

/// `rc-agent doctor`: the troubleshooting guide's four steps done for the user, plus the local
/// setup around them, as a list of checks (``DoctorChecks``).
///
/// Order: `config` → `credentials` (whatever the profile's backend) → `tenant` (DNS, TCP, TLS) → `auth` (guide step 1, Basic auth at the
/// token endpoint) → `records` (steps 2–3, the bearer token on the least-privilege endpoint) →
/// `permissions` (step 4, a Build Access endpoint; 403 is a warning) → `agent` → `rotation`.
/// A check runs with what the checks before it found; when one of them did not pass, it is
/// reported as skipped. Every guide text comes from ``RiskCloudError`` and the other
/// ``RCAgentError`` types: doctor only chooses which applies.
public struct DoctorRunner: Sendable {
    /// What the command line and environment say.
    public struct Input: Sendable {
        public var configFlag: String?
        public var profileFlag: String?
        public var socketFlag: String?
        public var environment: [String: String]

        /// - Parameter connect: a tenant client for the selected profile of these settings.
    public init(configFlag: String?, profileFlag: String?, socketFlag: String?, environment: [String: String]) {
            self.configFlag = configFlag
            self.profileFlag = profileFlag
            self.socketFlag = socketFlag
            self.environment = environment
        }
    }

    let input: Input
    let makeStore: @Sendable (Settings) -> any CredentialStore
    let connect: @Sendable (Settings) throws -> any TenantRequesting
    let resolver: any HostResolving
    let clock: any AgentClock

    public init(
        input: Input, makeStore: @escaping @Sendable (Settings) -> any CredentialStore,
        connect: @escaping @Sendable (Settings) throws -> any TenantRequesting,
        resolver: any HostResolving, clock: any AgentClock
    ) {
        self.input = input
        self.makeStore = makeStore
        self.connect = connect
        self.resolver = resolver
        self.clock = clock
    }

    /// Runs every check and returns the report; never throws.
    public func run() async -> DoctorReport {
        let log = DoctorLog(clock: clock)
        let profile = await log.check("config") { try DoctorChecks.Config(input: input).run() }
        let credential = await log.check("credentials", after: profile) {
            try await DoctorChecks.Credentials(store: makeStore($0.settings)).run($0)
        }
        let connection = await log.check("tenant", after: profile) {
            try await DoctorChecks.Tenant(connect: connect, resolver: resolver, clock: clock).run($0)
        }
        let token = await log.check("auth", after: profile, credential, connection) {
            try await DoctorChecks.Auth(clock: clock).run($0, $1, $2)
        }
        let working = await log.check("records", after: credential, connection, token) {
            try await DoctorChecks.Records(clock: clock).run($0, $1, $2)
        }
        _ = await log.check("permissions", after: connection, working) {
            try await DoctorChecks.Permissions(clock: clock).run($0, $1)
        }
        _ = await log.check("agent") {
            let settings = profile.value?.settings
            return await DoctorChecks.Agent(input: input).run(
                profile: settings?.profile, backend: settings.map { $0.backend(for: $0.profile) })
        }
        _ = await log.check("rotation", after: profile, credential) {
            DoctorChecks.Rotation(clock: clock).run($0, $1)
        }
        try? await connection.value?.transport.shutdown()
        return DoctorReport(checks: log.results)
    }
}

/// How a check ended, and what it hands on to the checks after it (nil when it did not pass).
struct Checked<Value> {
    var status: DoctorCheckStatus
    var message: String
    var hint: String?
    var exitStatus: ExitStatus = .ok
    var value: Value?

    static func ok(_ message: String, _ value: Value) -> Checked { Checked(status: .ok, message: message, value: value) }
    static func warn(_ message: String, hint: String?, _ value: Value) -> Checked {
        Checked(status: .warn, message: message, hint: hint, value: value)
    }
    static func fail(_ error: any RCAgentError) -> Checked {
        Checked(status: .fail, message: error.message, hint: error.hint, exitStatus: error.exitStatus)
    }
}

/// What a check found: its id, and its value when it passed (ok or warning).
struct Found<Value> {
    let id: String
    let value: Value?
}

/// The report as the checks run: each check's result and timing, and the skips.
final class DoctorLog {
    private let clock: any AgentClock
    private(set) var results: [DoctorCheckResult] = []

    init(clock: any AgentClock) { self.clock = clock }

    func check<T>(_ id: String, _ body: () async throws -> Checked<T>) async -> Found<T> {
        await run(id, blocker: nil, body)
    }

    func check<A, T>(_ id: String, after a: Found<A>, _ body: (A) async throws -> Checked<T>) async -> Found<T> {
        guard let valueA = a.value else { return skip(id, blocker: a.id) }
        return await run(id, blocker: nil) { try await body(valueA) }
    }

    func check<A, B, T>(_ id: String, after a: Found<A>, _ b: Found<B>, _ body: (A, B) async throws -> Checked<T>)
        async -> Found<T>
    {
        guard let valueA = a.value else { return skip(id, blocker: a.id) }
        guard let valueB = b.value else { return skip(id, blocker: b.id) }
        return await run(id, blocker: nil) { try await body(valueA, valueB) }
    }

    func check<A, B, C, T>(
        _ id: String, after a: Found<A>, _ b: Found<B>, _ c: Found<C>, _ body: (A, B, C) async throws -> Checked<T>
    ) async -> Found<T> {
        guard let valueA = a.value else { return skip(id, blocker: a.id) }
        guard let valueB = b.value else { return skip(id, blocker: b.id) }
        guard let valueC = c.value else { return skip(id, blocker: c.id) }
        return await run(id, blocker: nil) { try await body(valueA, valueB, valueC) }
    }

    private func skip<T>(_ id: String, blocker: String) -> Found<T> {
        results.append(DoctorCheckResult(
            id: id, status: .skip, message: "skipped: the \(blocker) check did not pass", hint: nil, elapsedMS: 0))
        return Found(id: id, value: nil)
    }

    private func run<T>(_ id: String, blocker: String?, _ body: () async throws -> Checked<T>) async -> Found<T> {
        let start = clock.now()
        let checked: Checked<T>
        do {
            checked = try await body()
        } catch let error as any RCAgentError {
            checked = .fail(error)
        } catch {
            checked = Checked(status: .fail, message: "\(error)", exitStatus: .failure)
        }
        results.append(DoctorCheckResult(
            id: id, status: checked.status, message: checked.message, hint: checked.hint,
            elapsedMS: DoctorChecks.milliseconds(since: start, clock: clock), exitStatus: checked.exitStatus))
        let passed = checked.status == .ok || checked.status == .warn
        return Found(id: id, value: passed ? checked.value : nil)
    }
}
