import CLibSecret
import Foundation
import Synchronization
import Testing

@testable import RCAgentClient
@testable import RCAgentCore
@testable import RCAgentDaemon
@testable import RCAgentLive
import RCAgentTestSupport

/// Only inside scripts/with-keyring.sh: these tests lock and unlock the default collection, which
/// must never happen to a developer's real keyring (its password is not ours to know).
private let sandboxKeyringPassword = ProcessInfo.processInfo.environment["RC_TEST_KEYRING_PASSWORD"]
private let underTestKeyring =
    sandboxKeyringPassword != nil && ProcessInfo.processInfo.environment["DBUS_SESSION_BUS_ADDRESS"] != nil
private let needsKeyring = Testing.ConditionTrait.enabled(
    if: underTestKeyring,
    "needs the private gnome-keyring: run under scripts/with-keyring.sh (as `make test` does)")

/// LibSecretStore against the real gnome-keyring of the private session bus. Serialized: the
/// tests share that keyring, and one of them locks it.
@Suite(.serialized) struct KeyringStoreTests {
    let store = LibSecretStore(timeout: 20)

    private func credential(
        _ profile: String, clientID: String = "client-1", url: String = "https://acme.logicgate.com",
        secret: String = "s3cret-\(UUID().uuidString)", created: TimeInterval = 1_700_000_000
    ) -> StoredCredential {
        StoredCredential(
            profile: profile, clientID: clientID, url: url, secret: Secret(secret),
            created: Date(timeIntervalSince1970: created))
    }

    private func uniqueProfile() -> String { "kr-\(UUID().uuidString.prefix(8))" }

    @Test(needsKeyring) func storeLoadReplaceDelete() async throws {
        let profile = uniqueProfile()
        #expect(try await store.load(profile: profile) == nil)

        let first = credential(profile)
        try await store.save(first)
        #expect(try await store.load(profile: profile) == first)

        // Different client id, url and created: a new item replaces the old one.
        let second = credential(
            profile, clientID: "client-2", url: "http://127.0.0.1:8080", secret: "ünïcødé ✓ secret",
            created: 1_800_000_000)
        try await store.save(second)
        #expect(try await store.load(profile: profile) == second)
        #expect(try await SecretTool.itemCount(profile: profile) == 1)

        // Same attributes again: replaced in place, still one item.
        let third = credential(
            profile, clientID: "client-2", url: "http://127.0.0.1:8080", secret: "rotated", created: 1_800_000_000)
        try await store.save(third)
        #expect(try await store.load(profile: profile) == third)
        #expect(try await SecretTool.itemCount(profile: profile) == 1)

        let summary = try await store.list().first { $0.profile == profile }
        #expect(
            summary
                == CredentialSummary(
                    profile: profile, clientID: "client-2", url: "http://127.0.0.1:8080",
                    created: Date(timeIntervalSince1970: 1_800_000_000), locked: false))

        #expect(try await store.delete(profile: profile))
        #expect(try await store.load(profile: profile) == nil)
        #expect(try await store.delete(profile: profile) == false)  // idempotent
        #expect(try await store.list().contains { $0.profile == profile } == false)
    }

    @Test(needsKeyring) func listIsSortedAndHasNoOtherProfiles() async throws {
        let a = "kr-a-\(UUID().uuidString.prefix(8))"
        let b = "kr-b-\(UUID().uuidString.prefix(8))"
        try await store.save(credential(b))
        try await store.save(credential(a))
        try await SecretTool.clearing(a, b) {
            let profiles = try await store.list().map(\.profile)
            #expect(profiles == profiles.sorted())
            #expect(profiles.filter { $0 == a || $0 == b } == [a, b])
        }
    }

    @Test(needsKeyring) func secretToolSeesTheItem() async throws {
        let profile = uniqueProfile()
        let saved = credential(profile, clientID: "visible-client", url: "https://acme.logicgate.com")
        try await store.save(saved)
        try await SecretTool.clearing(profile) {
            let output = try await SecretTool.run(["search", "--all", "service", "rc-agent", "profile", profile])
            // secret-tool prints the secret: check it without ever letting the line into a message.
            let secretLines = output.lines.filter { $0.hasPrefix("secret = ") }
            let secretMatches = secretLines == ["secret = \(saved.secret.reveal())"]
            #expect(secretMatches)
            let visible = output.lines.filter { !$0.hasPrefix("secret = ") }
            #expect(visible.contains("label = Risk Cloud credentials (\(profile))"))
            #expect(visible.contains("attribute.service = rc-agent"))
            #expect(visible.contains("attribute.profile = \(profile)"))
            #expect(visible.contains("attribute.client_id = visible-client"))
            #expect(visible.contains("attribute.url = https://acme.logicgate.com"))
            #expect(visible.contains("attribute.created = 1700000000"))
        }
    }

    /// An item made by hand with rc-agent's schema is read like one rc-agent stored.
    @Test(needsKeyring) func readsAnItemMadeWithSecretToolInRCAgentsSchema() async throws {
        let profile = uniqueProfile()
        try await SecretTool.run(
            ["store", "--label", "by hand", "xdg:schema", "com.logicgate.rc-agent.Credentials", "service", "rc-agent",
             "profile", profile, "client_id", "hand-client", "url", "https://acme.logicgate.com"],
            stdin: "hand-made-secret")
        try await SecretTool.clearing(profile) {
            let loaded = try #require(try await store.load(profile: profile))
            #expect(loaded.clientID == "hand-client")
            #expect(loaded.secret == Secret("hand-made-secret"))
            // No `created` attribute: the keyring's own creation time stands in.
            #expect(loaded.created.timeIntervalSince1970 > 1_700_000_000)
            #expect(try await store.delete(profile: profile))
            #expect(try await SecretTool.itemCount(profile: profile) == 0)
        }
    }

    /// Another program's item with rc-agent's attributes but not its schema (what a plain
    /// `secret-tool store … service rc-agent profile P` makes): never read, listed, replaced,
    /// reconciled or deleted.
    @Test(needsKeyring) func itemsOfOtherSchemasAreLeftAlone() async throws {
        let profile = uniqueProfile()
        try await SecretTool.run(
            ["store", "--label", "not rc-agent's", "service", "rc-agent", "profile", profile,
             "client_id", "foreign-client", "url", "https://evil.example.com"],
            stdin: "foreign-secret")
        try await SecretTool.clearing(profile) {
            #expect(try await SecretTool.itemCount(profile: profile) == 1)

            #expect(try await store.load(profile: profile) == nil)
            #expect(try await store.list().contains { $0.profile == profile } == false)
            #expect(try await store.delete(profile: profile) == false)
            #expect(try await SecretTool.itemCount(profile: profile) == 1)

            let own = credential(profile)
            try await store.save(own)
            #expect(try await store.load(profile: profile) == own)
            #expect(try await store.reconcile(profile: profile) == false)
            #expect(try await store.list().first { $0.profile == profile }?.itemCount == 1)
            #expect(try await SecretTool.itemCount(profile: profile) == 2, "the foreign item is still there")
            #expect(try await store.delete(profile: profile))
            #expect(try await SecretTool.itemCount(profile: profile) == 1)
        }
    }

    /// Locked collection: load must say "locked", never "not logged in"; store and delete fail
    /// with "locked" and leave the earlier item as it was; list still shows the attributes.
    ///
    /// Locking the keyring every other suite shares would make their keyring calls fail while
    /// it is locked (`.serialized` orders only this suite). So the test re-runs itself — this
    /// very test binary, filtered to this test — under its own scripts/with-keyring.sh, and
    /// locks that private keyring instead.
    @Test(needsKeyring) func lockedCollection() async throws {
        if ProcessInfo.processInfo.environment[isolatedLockTest] == "1" {
            try await lockedCollectionInThisKeyring()
            return
        }
        let child = IsolatedRun.run(filter: "KeyringStoreTests/lockedCollection", environment: [isolatedLockTest: "1"])
        #expect(child.status == 0, "isolated locked-keyring run failed:\n\(child.output)")
        #expect(child.output.contains("Test run with 1 test"), "the isolated run did not run the test:\n\(child.output)")
    }

    private func lockedCollectionInThisKeyring() async throws {
        let profile = uniqueProfile()
        let good = credential(profile, secret: "good-secret-\(UUID().uuidString)")
        try await store.save(good)
        try await SecretTool.clearing(profile) {
            try KeyringControl.lockDefaultCollection()
            do {
                await #expect(throws: KeyringError.locked) { try await store.load(profile: profile) }

                let summary = try await store.list().first { $0.profile == profile }
                #expect(summary?.locked == true)
                #expect(summary?.clientID == good.clientID)

                let replacement = credential(profile, clientID: "other", secret: "must-not-land")
                await #expect(throws: KeyringError.locked) { try await store.save(replacement) }
                await #expect(throws: KeyringError.locked) { try await store.delete(profile: profile) }
            } catch {
                try KeyringControl.unlockDefaultCollection()
                throw error
            }
            try KeyringControl.unlockDefaultCollection()

            #expect(try await store.load(profile: profile) == good)
            #expect(try await SecretTool.itemCount(profile: profile) == 1)
            #expect(try await store.list().first { $0.profile == profile }?.locked == false)

            // The keyring daemon gone, D-Bus activation starts a fresh one whose collection is locked
            // and shows none of an item's attributes: that is a locked keyring, not a missing login
            // (the agent's helper connects anew for every call, so it meets this daemon).
            try KeyringControl.killSecretService()
            let helper = KeyringProcessStore(executable: Binaries.rcAgent, environment: ProcessInfo.processInfo.environment, timeout: 20)
            await #expect(throws: KeyringError.locked) { try await helper.load(profile: profile) }
            await #expect(throws: KeyringError.locked) { try await helper.list() }
            // This process's connection still names the old daemon: one `unavailable`, then the new one.
            await #expect {
                try await store.load(profile: profile)
            } throws: { error in
                guard case .unavailable = error as? KeyringError else { return false }
                return true
            }
            await #expect(throws: KeyringError.locked) { try await store.load(profile: profile) }
            await #expect(throws: KeyringError.locked) { try await store.list() }
        }
    }

    /// The agent's keyring in a child process (`rc-agent keyring-helper`): the same answers as
    /// libsecret in this process, the secret included, and its writes land in the same keyring.
    @Test(needsKeyring) func theHelperProcessAnswersAsLibsecretDoes() async throws {
        let helper = KeyringProcessStore(executable: Binaries.rcAgent, environment: ProcessInfo.processInfo.environment, timeout: 20)
        let profile = uniqueProfile()
        try await SecretTool.clearing(profile) {
            #expect(try await helper.load(profile: profile) == nil)
            let first = credential(profile)
            try await store.save(first)
            let loaded = try await helper.load(profile: profile)
            #expect(loaded == first)
            #expect(loaded?.storedAt != nil)
            #expect(try await helper.list().first { $0.profile == profile } == store.list().first { $0.profile == profile })

            let second = credential(profile, clientID: "client-2", created: 1_800_000_000)
            try await helper.save(second)
            #expect(try await store.load(profile: profile) == second)
            #expect(try await helper.reconcile(profile: profile) == false)
            #expect(try await helper.delete(profile: profile))
            #expect(try await store.load(profile: profile) == nil)
            #expect(try await helper.delete(profile: profile) == false)
        }
    }
}

/// ``KeyringProcessStore``'s side of the helper: no keyring needed (these helpers never get as far).
@Suite struct KeyringHelperProcessTests {
    private let bus = ["DBUS_SESSION_BUS_ADDRESS": "unix:path=/nonexistent/bus"]

    @Test func noBusFailsAtOnceWithoutAHelper() async throws {
        let store = KeyringProcessStore(executable: "/nonexistent/rc-agent", environment: [:], timeout: 20)
        await #expect {
            try await store.load(profile: "p")
        } throws: { error in
            guard case .unavailable(let detail) = error as? KeyringError else { return false }
            return detail.contains("no D-Bus session bus")
        }
    }

    @Test func aHelperThatEndsWithoutAnAnswerIsAnError() async throws {
        let store = KeyringProcessStore(executable: "/bin/true", environment: bus, timeout: 20)
        await #expect {
            try await store.list()
        } throws: { error in
            guard case .failed(let detail) = error as? KeyringError else { return false }
            return detail.contains("ended with status 0 without an answer")
        }
    }

    /// A helper that never answers is killed 5 s after the keyring timeout, and reaped.
    @Test func aHelperThatNeverAnswersIsKilledAtTheDeadline() async throws {
        let (script, pidFile) = try Self.silentHelper()
        let store = KeyringProcessStore(executable: script, environment: bus, timeout: 0)
        await #expect(throws: KeyringError.timedOut(seconds: 5)) { try await store.load(profile: "p") }
        #expect(try Self.isGone(pidFile))
    }

    /// Cancelling the waiting task (the agent shutting down) kills the helper at once: a load,
    /// and a list, which callers share (``FreshResults``) — the agent's status and reminders
    /// list the keyring, and stopping must not wait for them.
    @Test(arguments: [false, true]) func cancellingTheCallKillsTheHelper(list: Bool) async throws {
        let (script, pidFile) = try Self.silentHelper()
        let store = KeyringProcessStore(executable: script, environment: bus, timeout: 600)
        let call = Task { list ? try await store.list().count : try await store.load(profile: "p").map { _ in 1 } ?? 0 }
        for _ in 0..<500 where (try? String(contentsOfFile: pidFile, encoding: .utf8)) == nil {
            try await Task.sleep(nanoseconds: 10_000_000)
        }
        call.cancel()
        await #expect(throws: CancellationError.self) { try await call.value }
        #expect(try Self.isGone(pidFile))
    }

    /// Callers that come while a run is under way share the next run, never the one under way:
    /// each result began after its caller asked, and no two runs overlap.
    @Test func listsInARowShareTheNextRun() async throws {
        let results = FreshResults<Int>()
        let runs = Mutex((started: 0, running: 0, overlapped: false))
        let gate = AsyncStream<Void>.makeStream()
        let body: @Sendable () async throws -> Int = {
            let number = runs.withLock { state -> Int in
                state.started += 1
                state.running += 1
                state.overlapped = state.overlapped || state.running > 1
                return state.started
            }
            if number == 1 { for await _ in gate.stream { break } }
            runs.withLock { $0.running -= 1 }
            return number
        }
        let first = Task { try await results.value(body) }
        while runs.withLock({ $0.started }) == 0 { try await Task.sleep(nanoseconds: 1_000_000) }
        let later = (0..<5).map { _ in Task { try await results.value(body) } }
        while await results.callers < 6 { try await Task.sleep(nanoseconds: 1_000_000) }
        gate.continuation.yield()
        #expect(try await first.value == 1)
        for task in later { #expect(try await task.value == 2) }
        #expect(runs.withLock { $0.started } == 2)
        #expect(runs.withLock { $0.overlapped } == false)
        #expect(try await results.value(body) == 3, "a caller after the shared run got an old result")
    }

    /// A stand-in helper that notes its pid and then sleeps without answering.
    private static func silentHelper() throws -> (script: String, pidFile: String) {
        let dir = NSTemporaryDirectory() + "rc-helper-\(UUID().uuidString.prefix(8))"
        try FileManager.default.createDirectory(atPath: dir, withIntermediateDirectories: true)
        let (script, pidFile) = (dir + "/helper", dir + "/pid")
        try "#!/bin/sh\necho $$ > \(pidFile).new && mv \(pidFile).new \(pidFile)\nexec sleep 600\n"
            .write(toFile: script, atomically: true, encoding: .utf8)
        chmod(script, 0o700)
        return (script, pidFile)
    }

    /// True when the process whose pid `pidFile` holds no longer exists (killed and reaped).
    private static func isGone(_ pidFile: String) throws -> Bool {
        let text = try String(contentsOfFile: pidFile, encoding: .utf8)
        guard let pid = pid_t(text.trimmingCharacters(in: .whitespacesAndNewlines)) else { return false }
        return kill(pid, 0) == -1 && errno == ESRCH
    }
}

/// Set in the child run of ``KeyringStoreTests/lockedCollection()``, which has a keyring of its own.
private let isolatedLockTest = "RC_TEST_ISOLATED_LOCK_RUN"

/// The off-pool runner: deterministic, no keyring needed (the bodies block until cancelled).
@Suite struct KeyringCallTests {
    @Test func timeoutCancelsTheBlockedCallAndThrowsTimedOut() async throws {
        await #expect(throws: KeyringError.timedOut(seconds: 0.05)) {
            try await KeyringCall<Int>.run(timeout: 0.05) { cancellable throws(KeyringError) in
                waitUntilCancelled(cancellable)
                return 1
            }
        }
        // The abandoned call was unblocked by its cancellable, so the keyring thread is free.
        let next = try await KeyringCall<Int>.run(timeout: 60) { _ throws(KeyringError) in 42 }
        #expect(next == 42)
    }

    @Test func taskCancellationThrowsCancellationError() async throws {
        let task = Task {
            try await KeyringCall<Int>.run(timeout: 600) { cancellable throws(KeyringError) in
                waitUntilCancelled(cancellable)
                return 1
            }
        }
        task.cancel()
        await #expect(throws: CancellationError.self) { try await task.value }
    }

    @Test func bodyErrorsPassThrough() async throws {
        await #expect(throws: KeyringError.locked) {
            try await KeyringCall<Int>.run(timeout: 60) { _ throws(KeyringError) in throw .locked }
        }
    }

    private func waitUntilCancelled(_ cancellable: UnsafeMutablePointer<GCancellable>) {
        var pollFD = GPollFD()
        guard g_cancellable_make_pollfd(cancellable, &pollFD) != 0 else { return }
        defer { g_cancellable_release_fd(cancellable) }
        var fd = pollfd(fd: pollFD.fd, events: Int16(POLLIN), revents: 0)
        _ = poll(&fd, 1, -1)
    }
}

/// GError → KeyringError: the same failure means different things per stage.
@Suite struct KeyringFailureTests {
    private func classify(_ domain: GQuark, _ code: UInt32) -> KeyringFailure.Kind {
        KeyringFailure(consuming: g_error_new_literal(domain, gint(bitPattern: code), "boom")).kind
    }

    @Test func classifiesGErrors() {
        #expect(classify(rc_secret_error_domain(), SECRET_ERROR_IS_LOCKED.rawValue) == .locked)
        #expect(classify(rc_secret_error_domain(), SECRET_ERROR_NO_SUCH_OBJECT.rawValue) == .noSuchObject)
        #expect(classify(rc_io_error_domain(), G_IO_ERROR_CANCELLED.rawValue) == .cancelled)
        #expect(classify(rc_io_error_domain(), G_IO_ERROR_NOT_FOUND.rawValue) == .noService)
        #expect(classify(rc_dbus_error_domain(), G_DBUS_ERROR_SERVICE_UNKNOWN.rawValue) == .noService)
        #expect(classify(rc_dbus_error_domain(), G_DBUS_ERROR_ACCESS_DENIED.rawValue) == .accessDenied)
        #expect(classify(rc_dbus_error_domain(), G_DBUS_ERROR_INVALID_ARGS.rawValue) == .other)
    }

    @Test func stripsRemoteErrorNames() {
        let error = g_dbus_error_new_for_dbus_error("org.example.Error.Odd", "odd thing")!
        #expect(KeyringFailure(consuming: error).message == "odd thing")
    }

    @Test func mapsPerStage() {
        func map(_ kind: KeyringFailure.Kind, _ stage: KeyringFailure.Stage) -> KeyringError {
            KeyringFailure(kind: kind, message: "m").keyringError(in: stage, timeout: 7)
        }
        #expect(map(.other, .connect) == .unavailable(detail: "m"))
        #expect(map(.noService, .read) == .unavailable(detail: "m"))
        #expect(map(.cancelled, .connect) == .timedOut(seconds: 7))
        #expect(map(.cancelled, .write) == .timedOut(seconds: 7))
        #expect(map(.locked, .read) == .locked)
        #expect(map(.locked, .write) == .locked)
        #expect(map(.noSuchObject, .write) == .writeRefused(detail: "m"))
        #expect(map(.accessDenied, .write) == .writeRefused(detail: "m"))
        #expect(map(.accessDenied, .read) == .failed(detail: "m"))
        #expect(map(.other, .read) == .failed(detail: "m"))
    }
}

/// `/usr/bin/secret-tool`, run as a user would. Its output may contain a secret: callers must
/// never print it.
private enum SecretTool {
    struct Output {
        let lines: [String]
    }

    @discardableResult
    static func run(_ arguments: [String], stdin: String? = nil) async throws -> Output {
        let result = try await runProcess(
            "/usr/bin/secret-tool", arguments, stdin: stdin, environment: ProcessInfo.processInfo.environment)
        // secret-tool prints the item's attributes to stderr, the rest to stdout.
        return Output(lines: (result.stdout.split(separator: "\n") + result.stderr.split(separator: "\n")).map(String.init))
    }

    /// Number of rc-agent items for `profile`, locked or not.
    static func itemCount(profile: String) async throws -> Int {
        try await run(["search", "--all", "service", "rc-agent", "profile", profile]).lines
            .filter { $0.hasPrefix("label = ") }.count
    }

    /// Runs `body`, then removes the items of `profiles` (best effort), also when `body` throws:
    /// the cleanup after a test (`secret-tool` runs async, which a `defer` cannot).
    static func clearing<T>(_ profiles: String..., after body: () async throws -> T) async throws -> T {
        func clear() async {
            for profile in profiles { _ = try? await run(["clear", "service", "rc-agent", "profile", profile]) }
        }
        do {
            let result = try await body()
            await clear()
            return result
        } catch {
            await clear()
            throw error
        }
    }
}
