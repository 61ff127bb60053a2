import RCAgentCore
import CLibSecret
import CLibSecretLoader
import Dispatch
import Synchronization

/// Runs one blocking libsecret call on a dedicated thread, bounded by a timeout.
///
/// The `_sync` libsecret calls block their thread on D-Bus (and on an unlock prompt), so they
/// must never run on the cooperative pool. The caller's `await` always returns by the deadline:
/// on timeout the call's `GCancellable` is cancelled (so the blocked call returns soon) and
/// `KeyringError.timedOut` is thrown at once; whatever the abandoned call returns later is dropped.
/// Task cancellation works the same way and throws `CancellationError`.
final class KeyringCall<Result: Sendable>: @unchecked Sendable {
    private enum State {
        case idle
        case waiting(CheckedContinuation<Result, any Error>)
        case ended(pending: (any Error)?)
    }

    // @unchecked Sendable: the pointer is only used through GCancellable's thread-safe API.
    private let cancellable: UnsafeMutablePointer<GCancellable>
    private let state = Mutex<State>(.idle)
    /// The timeout, cancelled when the call ends: an `asyncAfter` stayed queued, with what it
    /// held, for the whole timeout after every call (thousands under a flood of status requests).
    private let deadline = Mutex<Timer?>(nil)

    // @unchecked Sendable: a dispatch source's API is thread-safe.
    private struct Timer: @unchecked Sendable { let source: any DispatchSourceTimer }

    private init() {
        cancellable = g_cancellable_new()
    }

    deinit {
        g_object_unref(cancellable)
    }

    /// Runs `body(cancellable)` off the cooperative pool; throws its error, `.timedOut`, or
    /// `CancellationError`.
    static func run(
        timeout: Double,
        _ body: @escaping @Sendable (UnsafeMutablePointer<GCancellable>) throws(KeyringError) -> Result
    ) async throws -> Result {
        try requireLibSecret()
        let call = KeyringCall()
        return try await withTaskCancellationHandler {
            try await withCheckedThrowingContinuation { continuation in
                guard call.install(continuation) else { return }
                call.arm(timeout: timeout)
                keyringQueue.async {
                    let result: Swift.Result<Result, any Error>
                    do throws(KeyringError) {
                        result = .success(try body(call.cancellable))
                    } catch {
                        result = .failure(error)
                    }
                    drainDefaultMainContext()
                    call.finish(result)
                }
            }
        } onCancel: {
            call.abandon(with: CancellationError())
        }
    }

    private func arm(timeout: Double) {
        let timer = DispatchSource.makeTimerSource(queue: .global())
        // Weak: a call that finished in time is freed at once.
        timer.setEventHandler { [weak self] in self?.abandon(with: KeyringError.timedOut(seconds: timeout)) }
        timer.schedule(deadline: .now() + max(0, timeout))
        let armed = Timer(source: timer)
        deadline.withLock { $0 = armed }
        timer.resume()
    }

    private func disarm() {
        deadline.withLock { $0.take() }?.source.cancel()
    }

    /// Stores the continuation; false (after resuming it) when the task was cancelled already.
    private func install(_ continuation: CheckedContinuation<Result, any Error>) -> Bool {
        let pending: (any Error)?? = state.withLock { state in
            if case .ended(let pending) = state { return .some(pending) }
            state = .waiting(continuation)
            return .none
        }
        guard let pending else { return true }
        continuation.resume(throwing: pending ?? CancellationError())
        return false
    }

    /// The call returned: hand its result to the caller unless the caller gave up already.
    private func finish(_ result: Swift.Result<Result, any Error>) {
        disarm()
        if let continuation = take(ending: nil) { continuation.resume(with: result) }
    }

    /// Timeout or task cancellation: unblock the libsecret call and return `error` now.
    private func abandon(with error: any Error) {
        // Claim the caller before cancelling: the cancelled call may return (and try to
        // finish) immediately.
        let continuation = take(ending: error)
        disarm()
        g_cancellable_cancel(cancellable)
        continuation?.resume(throwing: error)
    }

    private func take(ending pending: (any Error)?) -> CheckedContinuation<Result, any Error>? {
        state.withLock { state in
            switch state {
            case .idle:
                state = .ended(pending: pending)
                return nil
            case .waiting(let continuation):
                state = .ended(pending: nil)
                return continuation
            case .ended:
                return nil
            }
        }
    }
}

// One serial queue: keyring calls are rare, and libsecret's sync calls then never overlap.
private let keyringQueue = DispatchQueue(label: "rc-agent.keyring")

/// Loads libsecret (at the first keyring call of the process, not at its start); a system
/// without it has no Secret Service backend, which is `unavailable` with the reason.
func requireLibSecret() throws(KeyringError) {
    var reason: UnsafePointer<CChar>?
    guard rc_libsecret_load(&reason) == 1 else {
        throw .unavailable(detail: "libsecret is not installed (\(reason.map { String(cString: $0) } ?? "libsecret-1.so.0"))")
    }
}

/// Runs what is due on GLib's global default main context, which nothing else in the process runs.
///
/// When the last reference to a D-Bus proxy goes (libsecret's item proxies, dropped at the end of
/// every keyring call), GDBus hands the end of its signal subscriptions to the main context the
/// proxy was made in — the default one on this thread — as an idle callback. Never run, those
/// callbacks and what they hold stayed for good: about 2 KB per `GET /v1/status`, the RSS growth
/// under bad input (docs/RELIABILITY.md).
private func drainDefaultMainContext() {
    while g_main_context_iteration(nil, 0) != 0 {}
}
