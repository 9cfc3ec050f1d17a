import Testing
import VitrineDeadline

@Suite struct DeadlineTests {
    @Test func theWorkAnswersWhenItIsInTime() async throws {
        #expect(try await withDeadline(.seconds(10)) { 42 } == 42)
    }

    @Test func workThatNeverEndsIsAbandonedAtTheLimit() async throws {
        await #expect(throws: DeadlineExceeded.self) {
            // The work would take an hour.
            try await withDeadline(.milliseconds(50)) { () async throws -> Int in
                try await Task.sleep(for: .seconds(3_600))
                return 0
            }
        }
    }

    @Test func aCancelledCallerIsAnsweredAtOnce() async throws {
        let caller = Task {
            try await withDeadline(.seconds(3_600)) { () async throws -> Int in
                try await Task.sleep(for: .seconds(3_600))
                return 0
            }
        }
        try await Task.sleep(for: .milliseconds(20))
        caller.cancel()
        await #expect(throws: CancellationError.self) { try await caller.value }
    }
}
