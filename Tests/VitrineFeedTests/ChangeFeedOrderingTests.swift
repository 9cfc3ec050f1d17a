import Foundation
import Logging
import Synchronization
import Testing
import VitrineTestSupport
@testable import VitrineFeed

/// No committed change is lost: not when transactions commit out of id order, not when a
/// transaction stays open while others commit, and not when the saved cursor belongs to another
/// outbox (another database, a recreated table) or is ahead of it.
@Suite(.serialized, .timeLimit(.minutes(2)))
struct ChangeFeedOrderingTests {
    typealias Applied = ChangeFeedTests.Applied

    static func appliedTags(_ applied: Applied) -> Set<String> {
        Set(applied.tags.withLock { $0.flatMap { $0 } })
    }

    static func start(_ url: String, cursorFile: String, applied: Applied) async throws -> (ChangeFeed, Task<Void, any Error>) {
        let feed = try ChangeFeedTests.makeFeed(url, cursorFile: cursorFile, applied: applied)
        let task = Task { try await feed.run() }
        try await ChangeFeedTests.eventually { feed.status.state == "connected" }
        return (feed, task)
    }

    /// T1 takes the lower outbox id and stays open; T2 takes a higher one and commits first; the
    /// feed reads T2's row; then T1 commits. T1's change must still be applied.
    @Test func aTransactionCommittingAfterALaterOneIsNotSkipped() async throws {
        guard let url = try await ChangeFeedSQLTests.freshDatabase("vitrine_feed_order") else { return }
        let applied = Applied()
        let (feed, task) = try await Self.start(url, cursorFile: ChangeFeedTests.cursorFile(), applied: applied)
        defer { task.cancel() }
        for round in 1...2 {
            // Held open long enough that a loaded machine commits the later one well before it.
            async let held = ChangeFeedSQLTests.psql(
                url, "BEGIN; SELECT vitrine_invalidate(ARRAY['held:\(round)']); SELECT pg_sleep(2.5); COMMIT;")
            try await Task.sleep(for: .milliseconds(150))
            try await ChangeFeedSQLTests.psql(url, "SELECT vitrine_invalidate(ARRAY['quick:\(round)'])")
            // The later transaction's change is applied at once, the held one's not yet.
            try await ChangeFeedTests.eventually { Self.appliedTags(applied).contains("quick:\(round)") }
            #expect(!Self.appliedTags(applied).contains("held:\(round)"))
            _ = try await held
            try await ChangeFeedTests.eventually { Self.appliedTags(applied).contains("held:\(round)") }
        }
        #expect(feed.status.fullPurges == 0)
    }

    /// Many writers, random commit delays, some transactions held open while others commit:
    /// every committed change is applied, and a rolled-back one is not.
    @Test func concurrentWritersLoseNothing() async throws {
        guard let url = try await ChangeFeedSQLTests.freshDatabase("vitrine_feed_writers") else { return }
        let applied = Applied()
        let (_, task) = try await Self.start(url, cursorFile: ChangeFeedTests.cursorFile(), applied: applied)
        defer { task.cancel() }
        var generator = SystemRandomNumberGenerator()
        var plans: [(tag: String, delay: Double, commit: Bool)] = []
        // Each writer is a psql process: 24 of them keep the burst within what two cores share
        // with the suites running beside.
        for writer in 0..<24 {
            let delay = writer % 6 == 0 ? 1.0 : Double(Int.random(in: 0...150, using: &generator)) / 1000
            plans.append(("w:\(writer)", delay, writer % 7 != 5))
        }
        try await withThrowingTaskGroup(of: Void.self) { group in
            for (index, plan) in plans.enumerated() {
                group.addTask {
                    try await Task.sleep(for: .milliseconds(index * 12))
                    let end = plan.commit ? "COMMIT" : "ROLLBACK"
                    try await ChangeFeedSQLTests.psql(
                        url, "BEGIN; SELECT vitrine_invalidate(ARRAY['\(plan.tag)']); SELECT pg_sleep(\(plan.delay)); \(end);")
                }
            }
            try await group.waitForAll()
        }
        let committed = Set(plans.filter(\.commit).map(\.tag))
        try await ChangeFeedTests.eventually { Self.appliedTags(applied).isSuperset(of: committed) }
        #expect(committed.subtracting(Self.appliedTags(applied)).sorted() == [])
        #expect(Self.appliedTags(applied).subtracting(committed).sorted() == [])
    }

    /// A cursor saved against database A, then the node pointed at database B: the cursor is not
    /// B's, so it is discarded (everything purged, loudly) and B's changes are applied.
    @Test func aCursorFromAnotherDatabaseIsDiscarded() async throws {
        guard let first = try await ChangeFeedSQLTests.freshDatabase("vitrine_feed_db_a"),
            let second = try await ChangeFeedSQLTests.freshDatabase("vitrine_feed_db_b")
        else { return }
        let cursorFile = ChangeFeedTests.cursorFile()
        for id in 1...20 { try await ChangeFeedSQLTests.psql(first, "SELECT vitrine_invalidate(ARRAY['a:\(id)'])") }
        let onFirst = Applied()
        let (feedA, taskA) = try await Self.start(first, cursorFile: cursorFile, applied: onFirst)
        try await ChangeFeedSQLTests.psql(first, "SELECT vitrine_invalidate(ARRAY['a:last'])")
        try await ChangeFeedTests.eventually { Self.appliedTags(onFirst).contains("a:last") }
        _ = feedA
        taskA.cancel()
        try await Task.sleep(for: .milliseconds(100))

        let onSecond = Applied()
        let (feedB, taskB) = try await Self.start(second, cursorFile: cursorFile, applied: onSecond)
        defer { taskB.cancel() }
        for id in 1...10 { try await ChangeFeedSQLTests.psql(second, "SELECT vitrine_invalidate(ARRAY['b:\(id)'])") }
        try await ChangeFeedTests.eventually { Self.appliedTags(onSecond).count == 10 }
        #expect(Self.appliedTags(onSecond) == Set((1...10).map { "b:\($0)" }))
        #expect(feedB.status.fullPurges == 1)
    }

    /// The outbox recreated (a restore, a staging copy): the saved cursor is ahead of every row
    /// it holds, so it is discarded and the new rows are applied.
    @Test func aCursorAheadOfTheOutboxIsDiscarded() async throws {
        guard let url = try await ChangeFeedSQLTests.freshDatabase("vitrine_feed_ahead") else { return }
        let cursorFile = ChangeFeedTests.cursorFile()
        for id in 1...30 { try await ChangeFeedSQLTests.psql(url, "SELECT vitrine_invalidate(ARRAY['old:\(id)'])") }
        let before = Applied()
        let (_, first) = try await Self.start(url, cursorFile: cursorFile, applied: before)
        try await ChangeFeedSQLTests.psql(url, "SELECT vitrine_invalidate(ARRAY['old:last'])")
        try await ChangeFeedTests.eventually { Self.appliedTags(before).contains("old:last") }
        first.cancel()
        try await Task.sleep(for: .milliseconds(100))

        // The outbox emptied and its numbering restarted, as a restore of an older copy would.
        try await ChangeFeedSQLTests.psql(url, "TRUNCATE vitrine_outbox RESTART IDENTITY")
        let after = Applied()
        let (feed, second) = try await Self.start(url, cursorFile: cursorFile, applied: after)
        defer { second.cancel() }
        for id in 1...5 { try await ChangeFeedSQLTests.psql(url, "SELECT vitrine_invalidate(ARRAY['new:\(id)'])") }
        try await ChangeFeedTests.eventually { Self.appliedTags(after).count == 5 }
        #expect(Self.appliedTags(after) == Set((1...5).map { "new:\($0)" }))
        #expect(feed.status.fullPurges == 1)
    }
}
