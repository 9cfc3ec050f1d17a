/// Matches replies to commands on one pipelined connection: Redis answers in order, so the
/// oldest command still waiting gets the next reply. A plain value, tested without sockets.
///
/// One waiter may wait for several replies in a row (a pipeline: one entry, not one per
/// command). A waiter whose caller gave up (timeout) keeps its place and its count, so that its
/// replies, when they come, are consumed by it and not handed to the command behind it.
public struct RedisCommandQueue<Waiter> {
    private struct Entry {
        var waiter: Waiter?
        /// Replies still to come for this entry.
        var replies: Int
    }

    private var entries: [Entry] = []
    private var head = 0
    public private(set) var isClosed = false

    public init() {}

    /// Entries sent and not yet fully answered (abandoned ones included).
    public var inFlight: Int { entries.count - head }

    /// The ticket the next `enqueue` will return.
    public var nextTicket: Int { entries.count + dropped }

    public enum Enqueue {
        case send
        /// The connection is closed: fail the command now.
        case fail
    }

    /// Records a command (or `replies` commands in a row, answered to one waiter) about to be
    /// written; returns its ticket (its position).
    public mutating func enqueue(_ waiter: Waiter, replies: Int = 1) -> (Enqueue, ticket: Int) {
        guard !isClosed, replies > 0 else { return (.fail, -1) }
        entries.append(Entry(waiter: waiter, replies: replies))
        return (.send, entries.count - 1 + dropped)
    }

    /// The waiter of the next reply: nil when nobody waits for it (abandoned), or when the reply
    /// is unexpected (`unexpected` is then true: the stream is out of sync). A waiter of several
    /// replies is returned for each of them.
    public mutating func receive() -> (waiter: Waiter?, unexpected: Bool) {
        guard head < entries.count else { return (nil, true) }
        entries[head].replies &-= 1
        guard entries[head].replies == 0 else { return (entries[head].waiter, false) }
        let waiter = entries[head].waiter.take()
        head &+= 1
        compact()
        return (waiter, false)
    }

    /// The caller of `ticket` gave up: its replies will be dropped. Returns its waiter if it was
    /// still waiting.
    public mutating func abandon(_ ticket: Int) -> Waiter? {
        let index = ticket - dropped
        guard index >= head, index < entries.count else { return nil }
        return entries[index].waiter.take()
    }

    /// Abandons every waiter still waiting that `expired` picks; returns them (to be failed).
    public mutating func abandonAll(where expired: (Waiter) -> Bool) -> [Waiter] {
        var abandoned: [Waiter] = []
        for index in head..<entries.count {
            guard let waiter = entries[index].waiter, expired(waiter) else { continue }
            entries[index].waiter = nil
            abandoned.append(waiter)
        }
        return abandoned
    }

    /// The waiters still waiting, oldest first.
    public var waiting: [Waiter] { entries[head...].compactMap(\.waiter) }

    /// The connection closed: every waiter still waiting, to be failed.
    public mutating func close() -> [Waiter] {
        isClosed = true
        let remaining = waiting
        dropped += entries.count
        entries.removeAll()
        head = 0
        return remaining
    }

    /// Tickets are absolute positions; `dropped` counts positions already compacted away.
    private var dropped = 0

    private mutating func compact() {
        if head > 1024 && head * 2 > entries.count {
            entries.removeFirst(head)
            dropped += head
            head = 0
        }
    }
}
