/// The fleet's purge log: every purge is appended to a Redis stream beside its pub/sub message,
/// so that a node whose subscription was interrupted reads what it missed instead of dropping
/// its whole L1. Pure decisions, tested without Redis.
public enum PurgeLog {
    /// A stream entry id, `MILLISECONDS-SEQUENCE`, ordered as Redis orders them.
    public struct EntryID: Sendable, Hashable, Comparable, CustomStringConvertible {
        public var milliseconds: UInt64
        public var sequence: UInt64

        public init(milliseconds: UInt64, sequence: UInt64) {
            self.milliseconds = milliseconds
            self.sequence = sequence
        }

        public static let zero = EntryID(milliseconds: 0, sequence: 0)

        /// Nil for anything that is not `digits-digits` (it comes from Redis, or from a message).
        public init?(parsing text: String) {
            let parts = text.split(separator: "-", omittingEmptySubsequences: false)
            guard parts.count == 2, let milliseconds = UInt64.parsingDigits(parts[0]), let sequence = UInt64.parsingDigits(parts[1]) else { return nil }
            self.init(milliseconds: milliseconds, sequence: sequence)
        }

        public static func < (lhs: EntryID, rhs: EntryID) -> Bool {
            (lhs.milliseconds, lhs.sequence) < (rhs.milliseconds, rhs.sequence)
        }

        public var description: String { "\(milliseconds)-\(sequence)" }
    }

    /// What Redis says about the log when a node catches up.
    public struct State: Sendable, Equatable {
        /// The log's generation (`vt:gen`): a new one means Redis lost its data (restarted
        /// empty) or is another Redis.
        public var generation: String
        /// The largest id trimmed from the log (`XINFO STREAM`'s `max-deleted-entry-id`).
        public var maxDeleted: EntryID

        public init(generation: String, maxDeleted: EntryID) {
            self.generation = generation
            self.maxDeleted = maxDeleted
        }
    }

    public enum CatchUp: Sendable, Equatable {
        /// Read the entries after this id and apply them; the rest of L1 stays.
        case replay(after: EntryID)
        /// What was missed cannot be known: drop L1, for this reason (said loudly).
        case dropL1(reason: String)
    }

    /// After a subscription gap that began with `lastApplied` applied, under `knownGeneration`.
    public static func catchUp(lastApplied: EntryID, knownGeneration: String?, now state: State) -> CatchUp {
        guard let knownGeneration, knownGeneration == state.generation else {
            return .dropL1(reason: "the purge log is of another generation (Redis restarted empty, or another Redis)")
        }
        if state.maxDeleted > lastApplied {
            return .dropL1(reason: "the purge log was trimmed past the last purge applied (\(lastApplied), trimmed up to \(state.maxDeleted))")
        }
        return .replay(after: lastApplied)
    }
}
