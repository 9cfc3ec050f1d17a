/// The purge marks of tags that a node has read from a clustered shared tier, kept current by the
/// purge fan-out the node hears. On a cluster a tag's marks live in the tag's own slot, so
/// checking an entry's tags against them costs a command per tag on every L2 hit; a node that
/// remembers them checks them here instead, and the hit is one command, as on a single server.
///
/// Remembered marks are exactly as current as the node's L1: both learn of a purge when its
/// fan-out message arrives. That holds only while the subscription is live, so:
/// - nothing is remembered until the node says the subscription is live (`trust`), and all of it
///   is forgotten the moment the node says it was lost (`distrust`): until it is live again every
///   lookup reads the marks from the tier, as it would without this cache;
/// - a purge of a tag forgets that tag (`forget`), whichever node made it;
/// - a read's marks are kept only if nothing was forgotten (and trust was not lost or regained)
///   between the moment the read was sent and its answer (`ticket`, `learn`): an answer that
///   left the tier before a purge's marks were set may arrive after the purge's message, and must
///   not outlive it.
///
/// A plain value; the owner keeps it under a lock.
public struct TagMarkCache: Sendable {
    /// A tag's hard and soft purge marks: the purge sequence of its last purge of each kind (0 for none).
    public struct Marks: Sendable, Equatable {
        public var hard: Int64
        public var soft: Int64

        public init(hard: Int64, soft: Int64) {
            self.hard = hard
            self.soft = soft
        }
    }

    /// When a read of marks was sent (see `learn`).
    public struct Ticket: Sendable, Equatable {
        fileprivate let epoch: UInt64
    }

    /// The most tags remembered; past it, one is forgotten for each newly learned.
    public let capacity: Int
    /// Whether the purge fan-out is live, so that what is remembered stays current.
    public private(set) var isTrusted = false
    private var known: [String: Marks] = [:]
    /// Moves on with every forgetting and every change of trust.
    private var epoch: UInt64 = 0

    public init(capacity: Int) {
        self.capacity = max(capacity, 0)
    }

    /// How many tags' marks are remembered.
    public var count: Int { known.count }

    /// The remembered marks of `tag`: nil when they must be read from the tier.
    public func marks(of tag: String) -> Marks? {
        guard isTrusted else { return nil }
        return known[tag]
    }

    /// To be taken when a read of marks is sent, and handed to `learn` with its answer.
    public var ticket: Ticket { Ticket(epoch: epoch) }

    /// Remembers `tag`'s marks as read with `ticket`, unless something was forgotten or trust
    /// changed since the ticket was taken. Returns whether they were kept.
    @discardableResult
    public mutating func learn(_ tag: String, _ marks: Marks, readWith ticket: Ticket) -> Bool {
        guard isTrusted, ticket.epoch == epoch, capacity > 0 else { return false }
        if known[tag] == nil, known.count >= capacity {
            // Bounded: make room by forgetting one (any one: a forgotten tag is read again).
            known.remove(at: known.startIndex)
        }
        known[tag] = marks
        return true
    }

    /// A purge of `tags` was made or heard of: their marks are read from the tier again.
    public mutating func forget(_ tags: [String]) {
        epoch &+= 1
        for tag in tags { known[tag] = nil }
    }

    /// The purge fan-out is live (again): what is read from now on stays current.
    public mutating func trust() {
        epoch &+= 1
        known.removeAll()
        isTrusted = true
    }

    /// The purge fan-out was lost, or may have missed something: nothing is remembered until it
    /// is live again.
    public mutating func distrust() {
        epoch &+= 1
        known.removeAll()
        isTrusted = false
    }
}
