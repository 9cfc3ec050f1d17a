/// Where the feed is in the outbox, and what to do on reconnecting. A plain value, tested without
/// a database.
public struct OutboxCursor: Sendable, Equatable {
    /// The id of the last outbox row applied (0: none yet).
    public private(set) var position: Int64

    public init(position: Int64) {
        self.position = position
    }

    /// What to do when the feed (re)connects and learns the oldest row the outbox still holds.
    public enum Resume: Equatable, Sendable {
        /// Read the rows after the cursor: nothing was missed.
        case replay
        /// Rows after the cursor were pruned before this node read them: some purges are lost, so
        /// everything must be purged (and the cursor moved to the newest row).
        case purgeEverything(newPosition: Int64)
    }

    /// - Parameters:
    ///   - oldestRetained: the smallest id in the outbox (nil: it is empty).
    ///   - newest: the largest id the outbox ever gave (its sequence's last value).
    public func resume(oldestRetained: Int64?, newest: Int64) -> Resume {
        // Rows after the cursor that are no longer in the outbox: pruned unread.
        let firstNeeded = position + 1
        if let oldestRetained, oldestRetained > firstNeeded, position > 0 {
            return .purgeEverything(newPosition: newest)
        }
        if oldestRetained == nil, newest > position, position > 0 {
            return .purgeEverything(newPosition: newest)
        }
        return .replay
    }

    /// Records that the row `id` was applied. Ids only move forward.
    public mutating func advance(to id: Int64) {
        if id > position { position = id }
    }
}
