import Testing
@testable import VitrineFeed

/// The cursor's decisions, without a database: rows of transactions that commit late are read,
/// the saved position never passes a transaction that may still write, and a saved cursor that
/// does not belong to the outbox is refused.
struct OutboxCursorTests {
    static func at(_ xid: UInt64, _ id: Int64) -> OutboxPosition { OutboxPosition(xid: xid, id: id) }
    static func snapshot(_ xmin: UInt64, _ xmax: UInt64, _ running: [UInt64] = []) -> PostgresSnapshot {
        PostgresSnapshot(xmin: xmin, xmax: xmax, inProgress: running)
    }

    @Test func aTransactionCommittingLateIsReadAndHoldsThePositionBack() {
        var cursor = OutboxCursor(position: Self.at(99, .max))
        // T100 took id 1 and is still running; T101 took id 2 and committed.
        var apply = cursor.absorb([Self.at(101, 2)], snapshot: Self.snapshot(100, 102, [100]), complete: true)
        #expect(apply == [true])
        #expect(cursor.frontier == Self.at(101, 2))
        #expect(cursor.pending == [100])
        #expect(cursor.position == Self.at(99, .max), "the saved position waits for T100")
        // Nothing new; T100 still running.
        apply = cursor.absorb([], snapshot: Self.snapshot(100, 103, [100]), complete: true)
        #expect(apply == [] && cursor.pending == [100])
        // T100 commits: its row (before the frontier) is read once, and the position moves on.
        apply = cursor.absorb([Self.at(100, 1)], snapshot: Self.snapshot(103, 103), complete: true)
        #expect(apply == [true])
        #expect(cursor.pending == [])
        #expect(cursor.position == Self.at(101, 2))
    }

    @Test func aTransactionThatWritesNothingOrRollsBackOnlyDelaysThePosition() {
        var cursor = OutboxCursor(position: Self.at(9, .max))
        _ = cursor.absorb([Self.at(11, 5)], snapshot: Self.snapshot(10, 12, [10]), complete: true)
        #expect(cursor.position == Self.at(9, .max))
        // T10 ended without a row: the position passes it.
        _ = cursor.absorb([], snapshot: Self.snapshot(12, 12), complete: true)
        #expect(cursor.position == Self.at(11, 5))
    }

    @Test func rowsAlreadyAppliedAreNotAppliedAgain() {
        var cursor = OutboxCursor(position: Self.at(1, .max))
        _ = cursor.absorb([Self.at(5, 3), Self.at(6, 4)], snapshot: Self.snapshot(4, 7, [4]), complete: true)
        // A page that starts before the frontier (the pending transaction's rows) repeats nothing.
        let apply = cursor.absorb([Self.at(4, 1), Self.at(4, 2)], snapshot: Self.snapshot(7, 7), complete: true)
        #expect(apply == [true, true])
        #expect(cursor.position == Self.at(6, 4))
    }

    @Test func aCutPageKeepsAnEndedTransactionPendingUntilItsRowsAreRead() {
        var cursor = OutboxCursor(position: Self.at(1, .max))
        _ = cursor.absorb([Self.at(9, 50)], snapshot: Self.snapshot(3, 10, [3]), complete: true)
        #expect(cursor.pending == [3])
        // T3 committed 2 rows, but the page held only the first.
        _ = cursor.absorb([Self.at(3, 7)], snapshot: Self.snapshot(10, 10), complete: false)
        #expect(cursor.pending == [3], "its second row is on the next page")
        #expect(cursor.position < Self.at(3, 8))
        let apply = cursor.absorb([Self.at(3, 8)], snapshot: Self.snapshot(10, 10), complete: true)
        #expect(apply == [true])
        #expect(cursor.pending == [] && cursor.position == Self.at(9, 50))
    }

    @Test func theFirstStartBeginsWithTransactionsStillRunning() {
        let cursor = OutboxCursor.startingAt(Self.snapshot(500, 510, [500, 505]))
        #expect(cursor.position == Self.at(499, .max))
    }

    @Test func savedCursorsAreCheckedAgainstTheOutbox() {
        let outbox = OutboxCursor.OutboxState(identity: "sys:db:1:gen", lastID: 40, pruned: Self.at(50, 10), snapshot: Self.snapshot(90, 95))
        #expect(OutboxCursor.resume(saved: nil, outbox: outbox) == .firstStart)
        #expect(OutboxCursor.resume(saved: SavedCursor(outbox: "sys:db:1:gen", position: Self.at(60, 30)), outbox: outbox) == .replay(Self.at(60, 30)))
        func purges(_ saved: SavedCursor) -> Bool {
            if case .purgeEverything = OutboxCursor.resume(saved: saved, outbox: outbox) { return true }
            return false
        }
        #expect(purges(SavedCursor(outbox: "sys:db:1:other-generation", position: Self.at(60, 30))))
        #expect(purges(SavedCursor(outbox: "other-sys:db:1:gen", position: Self.at(60, 30))))
        #expect(purges(SavedCursor(outbox: "sys:db:1:gen", position: Self.at(95, 30))), "a transaction not begun yet")
        #expect(purges(SavedCursor(outbox: "sys:db:1:gen", position: Self.at(60, 41))), "an id never given out")
        #expect(purges(SavedCursor(outbox: "sys:db:1:gen", position: Self.at(50, 9))), "rows after it were pruned")
        #expect(!purges(SavedCursor(outbox: "sys:db:1:gen", position: Self.at(89, .max))))
    }

    @Test func savedTextAndSnapshotsFromOutsideAreParsedStrictly() throws {
        let saved = SavedCursor(outbox: "7713704199475074089:16384:16877:3e12ca69-3636", position: Self.at(1061, 42))
        #expect(SavedCursor(decoding: saved.encoded + "\n") == saved)
        #expect(SavedCursor(decoding: "42") == nil, "a cursor of the older format")
        #expect(SavedCursor(decoding: "vitrine-cursor 2 x 99999999999999999999999/1") == nil)
        #expect(SavedCursor(decoding: "vitrine-cursor 2 x 1/-1") == nil)
        #expect(PostgresSnapshot(parsing: "100:105:100,103") == Self.snapshot(100, 105, [100, 103]))
        #expect(PostgresSnapshot(parsing: "7:7:") == Self.snapshot(7, 7))
        for bad in ["", "1:2", "5:4:", "1:5:9", "1:5:x", "1:5:2,,3", "18446744073709551616:1:"] {
            #expect(PostgresSnapshot(parsing: bad) == nil, "\(bad)")
        }
        #expect(try PostgresURL(parsing: "postgres://app:s3cret@db:6543/shop").description == "postgres://app@db:6543/shop")
        #expect(throws: FeedError.self) { try PostgresURL(parsing: "mysql://x") }
    }
}
