import VitrineCore

/// A place in the outbox, in the order the feed reads it: by writing transaction, then by id.
///
/// Transaction ids (`xid8`) only grow, and a transaction that has not committed yet always has
/// an id at least the snapshot's `xmin`; ids of rows (`bigserial`) are taken at insert, so a row
/// with a lower id can become visible after one with a higher id. Reading by `(xid, id)` puts
/// every row that can still appear after the rows of transactions that have ended.
public struct OutboxPosition: Sendable, Hashable, Comparable, CustomStringConvertible {
    public var xid: UInt64
    public var id: Int64

    public init(xid: UInt64, id: Int64) {
        self.xid = xid
        self.id = id
    }

    /// Before every row.
    public static let start = OutboxPosition(xid: 0, id: 0)

    /// After every row of transaction `xid` and of every older transaction.
    public static func after(transaction xid: UInt64) -> OutboxPosition {
        OutboxPosition(xid: xid, id: .max)
    }

    public static func < (lhs: OutboxPosition, rhs: OutboxPosition) -> Bool {
        (lhs.xid, lhs.id) < (rhs.xid, rhs.id)
    }

    public var description: String { "\(xid)/\(id)" }

    /// `"xid/id"`, as `description` writes it; nil for anything else.
    public init?(parsing text: Substring) {
        guard let slash = text.firstIndex(of: "/"),
            let xid = UInt64.parsingDigits(text[..<slash]),
            let id = Int64.parsingDigits(text[text.index(after: slash)...])
        else { return nil }
        self.init(xid: xid, id: id)
    }
}
