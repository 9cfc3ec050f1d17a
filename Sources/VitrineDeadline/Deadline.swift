import Synchronization

/// `work`'s result, or `DeadlineExceeded` after `limit`. The work is cancelled then but not
/// awaited: a call on a connection that died under it (postgres-nio's, for one) may never
/// return, and a task group would wait for it forever.
public func withDeadline<T: Sendable>(_ limit: Duration, _ work: @escaping @Sendable () async throws -> T) async throws -> T {
    let race = DeadlineRace()
    return try await withTaskCancellationHandler {
        try await withCheckedThrowingContinuation { continuation in
            let worker = Task {
                let result: Result<T, any Error>
                do { result = .success(try await work()) } catch { result = .failure(error) }
                race.cancelTimer()
                if race.claim() { continuation.resume(with: result) }
            }
            race.setWorker(worker)
            race.setTimer(
                Task {
                    try? await Task.sleep(for: limit)
                    guard !Task.isCancelled, race.claim() else { return }
                    worker.cancel()
                    continuation.resume(throwing: DeadlineExceeded(limit: limit))
                },
                onCancel: { continuation.resume(throwing: CancellationError()) })
        }
    } onCancel: {
        // The caller gave up: it gets CancellationError at once, the work is told to stop.
        race.callerCancelled()
    }
}

/// No answer came within the limit.
public struct DeadlineExceeded: Error, CustomStringConvertible {
    public let limit: Duration
    public var description: String { "no answer within \(limit)" }
}

/// Whichever of the work, the timer and the caller's cancellation comes first answers; the work
/// that finishes first stops the timer.
private final class DeadlineRace: Sendable {
    private struct State {
        var answered = false
        var worker: Task<Void, Never>?
        var timer: Task<Void, Never>?
        var timerCancelled = false
        var callerCancelled = false
        var answerCancellation: (@Sendable () -> Void)?
    }

    private let state = Mutex(State())

    func claim() -> Bool {
        state.withLock { state in
            defer { state.answered = true }
            return !state.answered
        }
    }

    func setWorker(_ worker: Task<Void, Never>) {
        state.withLock { $0.worker = worker }
    }

    /// `answerCancellation` answers the caller when it is (or was already) cancelled.
    func setTimer(_ timer: Task<Void, Never>, onCancel answerCancellation: @escaping @Sendable () -> Void) {
        let (stopTimer, cancelNow) = state.withLock { state in
            state.timer = timer
            state.answerCancellation = answerCancellation
            return (state.timerCancelled, state.callerCancelled)
        }
        if stopTimer { timer.cancel() }
        if cancelNow { callerCancelled() }
    }

    func cancelTimer() {
        state.withLock { state in
            state.timerCancelled = true
            return state.timer
        }?.cancel()
    }

    func callerCancelled() {
        let (answer, worker, timer) = state.withLock { state -> ((@Sendable () -> Void)?, Task<Void, Never>?, Task<Void, Never>?) in
            state.callerCancelled = true
            guard let answer = state.answerCancellation, !state.answered else { return (nil, nil, nil) }
            state.answered = true
            return (answer, state.worker, state.timer)
        }
        guard let answer else { return }
        worker?.cancel()
        timer?.cancel()
        answer()
    }
}
