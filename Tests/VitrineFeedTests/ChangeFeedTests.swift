import Foundation
import Logging
import Synchronization
import Testing
@testable import VitrineFeed

/// The change feed against the real Postgres: commits reach it, it survives a killed backend and
/// its own restart, and it purges everything when purges were pruned unread.
@Suite(.serialized, .timeLimit(.minutes(1)))
struct ChangeFeedTests {
    /// Tags applied by a feed, in order, and how many full purges it asked for.
    final class Applied: Sendable {
        /// One list per purge (the rows of one page read).
        let tags = Mutex<[[String]]>([])
        let fullPurges = Atomic<Int>(0)
        /// Every tag purged, in order.
        var flat: [String] { tags.withLock { $0.flatMap { $0 } } }
    }

    static func makeFeed(_ url: String, cursorFile: String, applied: Applied) throws -> ChangeFeed {
        var logger = Logger(label: "feed-test")
        logger.logLevel = ProcessInfo.processInfo.environment["FEED_DEBUG"] == nil ? .critical : .debug
        return try ChangeFeed(
            url: try PostgresURL(parsing: url), channel: "vitrine_invalidations", cursorStore: FileCursorStore(path: cursorFile),
            logger: logger, heartbeatInterval: .milliseconds(200), heartbeatTimeout: .milliseconds(500), pollInterval: .milliseconds(200),
            apply: { tags in applied.tags.withLock { $0.append(tags) } },
            purgeEverything: { applied.fullPurges.add(1, ordering: .relaxed) })
    }

    static func eventually(_ condition: () throws -> Bool) async throws {
        for _ in 0..<500 {
            if try condition() { return }
            try await Task.sleep(for: .milliseconds(10))
        }
        Issue.record("condition not met in time")
    }

    static func cursorFile() -> String {
        FileManager.default.temporaryDirectory.appendingPathComponent("vitrine-feed-test-\(UUID().uuidString).cursor").path
    }

    @Test func committedChangesReachTheFeedAndRolledBackOnesDoNot() async throws {
        guard let url = try await ChangeFeedSQLTests.freshDatabase("vitrine_feed_basic") else { return }
        let applied = Applied()
        let feed = try Self.makeFeed(url, cursorFile: Self.cursorFile(), applied: applied)
        let task = Task { try await feed.run() }
        try await Self.eventually { feed.status.state == "connected" }
        try await ChangeFeedSQLTests.psql(url, "INSERT INTO categories VALUES (7, 'Tents'); INSERT INTO products VALUES (42, 'Tent', '', 100, 1, 7)")
        try await ChangeFeedSQLTests.psql(url, "BEGIN; UPDATE products SET stock = 0 WHERE id = 42; ROLLBACK;")
        try await ChangeFeedSQLTests.psql(url, "UPDATE products SET price_cents = 90 WHERE id = 42")
        // A batch's rows are applied first, then its cursor saved: both are waited for.
        try await Self.eventually { feed.status.appliedRows == 3 && feed.status.cursor >= 4 }
        #expect(Set(applied.flat) == ["categories", "category:7", "listing:category:7", "product:42"])
        // The rolled-back transaction took outbox id 3 from the sequence: the cursor is at 4.
        #expect(feed.status.cursor == 4)
        task.cancel()
    }

    @Test func aKilledBackendAndARestartLoseNothing() async throws {
        guard let url = try await ChangeFeedSQLTests.freshDatabase("vitrine_feed_recovery") else { return }
        let cursorFile = Self.cursorFile()
        let applied = Applied()
        let feed = try Self.makeFeed(url, cursorFile: cursorFile, applied: applied)
        let task = Task { try await feed.run() }
        try await Self.eventually { feed.status.state == "connected" }

        // Every connection of the feed killed, then changes committed while it reconnects.
        try await ChangeFeedSQLTests.psql(
            url, "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = 'vitrine_feed_recovery' AND pid <> pg_backend_pid()")
        for id in 1...5 { try await ChangeFeedSQLTests.psql(url, "SELECT vitrine_invalidate(ARRAY['product:\(id)'])") }
        try await Self.eventually { Set(applied.flat).isSuperset(of: (1...5).map { "product:\($0)" }) && feed.status.cursor >= 5 }
        #expect(feed.status.reconnects >= 1)

        // The proxy stopped; changes committed; a new one resumes from the saved cursor.
        task.cancel()
        try await Task.sleep(for: .milliseconds(100))
        for id in 6...8 { try await ChangeFeedSQLTests.psql(url, "SELECT vitrine_invalidate(ARRAY['product:\(id)'])") }
        let restarted = Applied()
        let second = try Self.makeFeed(url, cursorFile: cursorFile, applied: restarted)
        let secondTask = Task { try await second.run() }
        // The rows are applied before the batch is counted: both are waited for.
        // The saved position may lag behind transactions running elsewhere in the cluster: rows
        // before 6 may be applied again (harmless), 6, 7 and 8 must be, in order.
        try await Self.eventually { restarted.flat.suffix(3) == ["product:6", "product:7", "product:8"] }
        #expect(second.status.replayedRows >= 3)
        secondTask.cancel()
    }

    @Test func aCursorOlderThanTheOutboxPurgesEverything() async throws {
        guard let url = try await ChangeFeedSQLTests.freshDatabase("vitrine_feed_gap") else { return }
        let cursorFile = Self.cursorFile()
        let applied = Applied()
        let first = try Self.makeFeed(url, cursorFile: cursorFile, applied: applied)
        let firstTask = Task { try await first.run() }
        try await Self.eventually { first.status.state == "connected" }
        try await ChangeFeedSQLTests.psql(url, "SELECT vitrine_invalidate(ARRAY['product:1'])")
        try await Self.eventually { applied.flat == ["product:1"] }
        firstTask.cancel()
        try await Task.sleep(for: .milliseconds(100))
        // While the node is down, rows it never read are pruned.
        for id in 2...4 { try await ChangeFeedSQLTests.psql(url, "SELECT vitrine_invalidate(ARRAY['product:\(id)'])") }
        try await ChangeFeedSQLTests.psql(url, "DELETE FROM vitrine_outbox WHERE tags <> ARRAY['product:4']")
        let restarted = Applied()
        let feed = try Self.makeFeed(url, cursorFile: cursorFile, applied: restarted)
        let task = Task { try await feed.run() }
        try await Self.eventually { restarted.fullPurges.load(ordering: .relaxed) == 1 && feed.status.state == "connected" }
        #expect(feed.status.fullPurges == 1)
        // Everything was purged: what happened before is covered, later changes are applied.
        try await ChangeFeedSQLTests.psql(url, "SELECT vitrine_invalidate(ARRAY['product:5'])")
        // (Rows of transactions that were still running somewhere in the cluster when it started
        // may be applied again: harmless. product:5 must be.)
        try await Self.eventually { restarted.flat.last == "product:5" }
        task.cancel()
    }

    /// Pruning rows the cursor has passed loses nothing: no full purge on restart.
    @Test func pruningReadRowsIsNotALoss() async throws {
        guard let url = try await ChangeFeedSQLTests.freshDatabase("vitrine_feed_prune_read") else { return }
        let cursorFile = Self.cursorFile()
        let applied = Applied()
        let first = try Self.makeFeed(url, cursorFile: cursorFile, applied: applied)
        let firstTask = Task { try await first.run() }
        try await Self.eventually { first.status.state == "connected" }
        for id in 1...3 { try await ChangeFeedSQLTests.psql(url, "SELECT vitrine_invalidate(ARRAY['product:\(id)'])") }
        try await Self.eventually { applied.flat.count == 3 && first.status.pendingTransactions == 0 }
        try await Task.sleep(for: .milliseconds(300))
        firstTask.cancel()
        try await Task.sleep(for: .milliseconds(100))
        try await ChangeFeedSQLTests.psql(url, "DELETE FROM vitrine_outbox")
        let restarted = Applied()
        let feed = try Self.makeFeed(url, cursorFile: cursorFile, applied: restarted)
        let task = Task { try await feed.run() }
        try await Self.eventually { feed.status.state == "connected" }
        #expect(feed.status.fullPurges == 0)
        task.cancel()
    }
}
