import VitrineCore
@testable import VitrineFeed

/// What the change feed reads from outside: a saved cursor (a file, Redis) and Postgres's
/// snapshot text; and the purge log's entry ids (from Redis). Both read back what they write; and the cursor, fed pages of rows and
/// snapshots made from the bytes, never moves its saved position backwards nor past a
/// transaction it still waits for.
enum FeedCursorTarget {
    static func run(_ bytes: [UInt8]) {
        let text = String(decoding: bytes, as: UTF8.self)
        if let saved = SavedCursor(decoding: text) {
            precondition(SavedCursor(decoding: saved.encoded) == saved, "\(text) does not read back")
        }
        if let id = PurgeLog.EntryID(parsing: text) {
            precondition(PurgeLog.EntryID(parsing: id.description) == id, "purge log id \(text) does not read back")
        }
        if let snapshot = PostgresSnapshot(parsing: text) {
            let written = "\(snapshot.xmin):\(snapshot.xmax):" + snapshot.inProgress.map(String.init).joined(separator: ",")
            precondition(PostgresSnapshot(parsing: written) == snapshot, "\(text) does not read back")
        }
        // The bytes as a run of reads: each 4-byte group is a row (xid offset, id) or a snapshot.
        var cursor = OutboxCursor(position: OutboxPosition(xid: 100, id: 0))
        var index = 0
        while index + 4 <= bytes.count {
            let kind = bytes[index] % 3
            var rows: [OutboxPosition] = []
            let count = Int(bytes[index + 1] % 8)
            var xid = cursor.position.xid &+ UInt64(bytes[index + 2] % 16)
            var id = Int64(bytes[index + 3])
            for _ in 0..<count {
                rows.append(OutboxPosition(xid: xid, id: id))
                xid &+= UInt64(id % 3)
                id &+= 1
            }
            rows.sort()
            let xmin = cursor.position.xid &+ UInt64(bytes[index + 2] % 4)
            let running = kind == 0 ? [] : [xmin]
            let snapshot = PostgresSnapshot(xmin: xmin, xmax: max(xmin &+ 1, (rows.last?.xid ?? 0) &+ 1), inProgress: running)
            let before = cursor.position
            _ = cursor.absorb(rows, snapshot: snapshot, complete: kind != 2)
            precondition(cursor.position >= before, "the saved position moved backwards")
            precondition(cursor.position <= cursor.frontier, "the position passed the frontier")
            for pending in cursor.pending {
                precondition(cursor.position < OutboxPosition(xid: pending, id: 0), "the position passed a running transaction")
            }
            index += 4
        }
    }
}
