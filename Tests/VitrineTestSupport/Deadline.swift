import Synchronization

/// `work`'s result, or `DeadlineExceeded` after `limit`. The work is cancelled then but not
/// awaited: a call on a connection killed under it (postgres-nio's, for one) may never return,
/// and a task group would wait for it forever.
public func withDeadline<T: Sendable>(_ limit: Duration, _ work: @escaping @Sendable () async throws -> T) async throws -> T {
    try await withCheckedThrowingContinuation { continuation in
        let answer = AnswerOnce()
        let task = Task {
            let result: Result<T, any Error>
            do { result = .success(try await work()) } catch { result = .failure(error) }
            if answer.claim() { continuation.resume(with: result) }
        }
        Task {
            try? await Task.sleep(for: limit)
            if answer.claim() {
                task.cancel()
                continuation.resume(throwing: DeadlineExceeded(limit: limit))
            }
        }
    }
}

public struct DeadlineExceeded: Error, CustomStringConvertible {
    public let limit: Duration
    public var description: String { "no answer within \(limit)" }
}

private final class AnswerOnce: Sendable {
    private let answered = Atomic<Bool>(false)
    func claim() -> Bool { !answered.exchange(true, ordering: .acquiringAndReleasing) }
}
