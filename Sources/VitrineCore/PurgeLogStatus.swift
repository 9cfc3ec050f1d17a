/// How this node follows the fleet's purge log (with Redis), as `/stats` and `/metrics` show it.
public struct PurgeLogStatus: Sendable, Equatable {
    public var generation: String?
    /// Every purge up to this log id has been applied here (or was covered by an L1 drop).
    public var lastApplied = PurgeLog.EntryID.zero
    /// The highest log id seen in a message.
    public var lastSeen = PurgeLog.EntryID.zero
    public var inGap = false
    public var caughtUp = 0
    public var l1Drops = 0
    public var lastDropCause: String?

    public init() {}
}
