/// The Postgres change feed's state, as `/stats` and `/metrics` show it.
public struct ChangeFeedStatus: Sendable, Equatable {
    public var state = "disconnected"
    /// The highest outbox id applied.
    public var cursor: Int64 = 0
    /// The saved position, `xid/id`: every row at or before it has been applied.
    public var position = ""
    /// Transactions still running that the cursor waits for (their rows may yet appear).
    public var pendingTransactions = 0
    /// Milliseconds between the last applied row's commit and its application.
    public var lagMilliseconds: Int64 = 0
    /// Rows committed and not yet applied, as of the last batch read.
    public var lagRows: Int64 = 0
    /// Rows applied on catching up after a (re)connect.
    public var replayedRows = 0
    public var reconnects = 0
    public var fullPurges = 0
    public var appliedRows = 0

    public init() {}
}
