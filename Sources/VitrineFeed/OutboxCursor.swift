/// Where the feed is in the outbox: which rows it has applied, and which may still appear. A
/// plain value, tested without a database; `ChangeFeed` runs its queries and carries out what it
/// decides.
///
/// Rows are read in `(xid, id)` order (`OutboxPosition`). Three marks:
/// - `frontier`: the last row read. Rows after it are new.
/// - `pending`: transactions before the frontier that were still running when last looked at.
///   Their rows cannot be visible yet, and will sort before the frontier when they commit, so
///   each read also asks for the rows of these transactions, until they have ended.
/// - `position`: every row at or before it has been applied and no row can appear there any
///   more. This is what is saved: a restart re-reads from it (re-applying a few purges at
///   worst, never skipping one).
///
/// A transaction held open for long holds `position` back, and nothing else: rows committed
/// after it are applied as they come (the issue of the long-running writer stalling every
/// other purge does not arise).
public struct OutboxCursor: Sendable, Equatable {
    public private(set) var position: OutboxPosition
    public private(set) var frontier: OutboxPosition
    /// Sorted, without duplicates.
    public private(set) var pending: [UInt64] = []

    public init(position: OutboxPosition) {
        self.position = position
        self.frontier = position
    }

    /// A node's first start, or a restart after everything was purged: rows of transactions that
    /// have ended are not this node's concern; those still running (and later) are.
    public static func startingAt(_ snapshot: PostgresSnapshot) -> OutboxCursor {
        OutboxCursor(position: .after(transaction: snapshot.xmin == 0 ? 0 : snapshot.xmin - 1))
    }

    /// Takes one page of rows, read (in `(xid, id)` order, after some position) as the rows after
    /// the frontier and those of pending transactions, with the snapshot the read saw.
    ///
    /// - Parameter complete: whether the page held every row that matched (not cut by a limit).
    /// - Returns: for each row, whether to apply it (false for a row already applied).
    public mutating func absorb(_ rows: [OutboxPosition], snapshot: PostgresSnapshot, complete: Bool) -> [Bool] {
        var decisions: [Bool] = []
        decisions.reserveCapacity(rows.count)
        for row in rows {
            decisions.append(row > frontier || pending.contains(row.xid))
        }
        if let last = rows.last, last > frontier { frontier = last }
        let running = Set(snapshot.inProgress)
        // A pending transaction that has ended had all its rows visible to this read, and they
        // were all in the page unless the page was cut before them.
        let cutAt = complete ? nil : rows.last?.xid
        pending.removeAll { xid in !running.contains(xid) && (cutAt.map { xid < $0 } ?? true) }
        for xid in snapshot.inProgress where xid < frontier.xid && xid > position.xid && !pending.contains(xid) {
            pending.append(xid)
        }
        pending.sort()
        let settled = pending.first.map { Swift.min(frontier, .after(transaction: $0 - 1)) } ?? frontier
        position = Swift.max(position, settled)
        return decisions
    }

    /// What to do with a saved cursor on (re)connecting.
    public enum Resume: Equatable, Sendable {
        /// Read after it: nothing was missed.
        case replay(OutboxPosition)
        /// No saved cursor: start from now.
        case firstStart
        /// The saved cursor cannot be trusted (another outbox, ahead of it, or older than what it
        /// retains): purge everything, then start from now.
        case purgeEverything(reason: String)
    }

    /// What the outbox says about itself when the feed connects.
    public struct OutboxState: Sendable, Equatable {
        /// `OutboxIdentity` of the outbox now connected to.
        public var identity: String
        /// The last id its sequence gave out.
        public var lastID: Int64
        /// The last position deleted from it (pruned); `.start` when none.
        public var pruned: OutboxPosition
        public var snapshot: PostgresSnapshot

        public init(identity: String, lastID: Int64, pruned: OutboxPosition, snapshot: PostgresSnapshot) {
            self.identity = identity
            self.lastID = lastID
            self.pruned = pruned
            self.snapshot = snapshot
        }
    }

    public static func resume(saved: SavedCursor?, outbox: OutboxState) -> Resume {
        guard let saved else { return .firstStart }
        guard saved.outbox == outbox.identity else {
            return .purgeEverything(reason: "the saved cursor belongs to another outbox (\(saved.outbox), now \(outbox.identity))")
        }
        let position = saved.position
        if position.xid >= outbox.snapshot.xmax || (position.id != .max && position.id > outbox.lastID) {
            return .purgeEverything(reason: "the saved cursor \(position) is ahead of the outbox's newest row (id \(outbox.lastID))")
        }
        if position < outbox.pruned {
            return .purgeEverything(
                reason: "the saved cursor \(position) is older than what the outbox retains (deleted up to \(outbox.pruned)): purges were lost")
        }
        return .replay(position)
    }
}

/// A cursor as saved: the outbox it belongs to, and its position there.
public struct SavedCursor: Sendable, Equatable {
    public var outbox: String
    public var position: OutboxPosition

    public init(outbox: String, position: OutboxPosition) {
        self.outbox = outbox
        self.position = position
    }

    /// `vitrine-cursor 2 OUTBOX XID/ID`.
    public var encoded: String { "vitrine-cursor 2 \(outbox) \(position)" }

    /// Nil for anything that is not a cursor of this format (an older format included).
    public init?(decoding text: String) {
        let parts = text.split(whereSeparator: { $0 == " " || $0 == "\n" })
        guard parts.count == 4, parts[0] == "vitrine-cursor", parts[1] == "2", !parts[2].isEmpty, parts[2].utf8.count <= 256,
            let position = OutboxPosition(parsing: parts[3])
        else { return nil }
        self.init(outbox: String(parts[2]), position: position)
    }
}
