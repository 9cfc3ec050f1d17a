/// Matches replies to commands on one pipelined connection: Redis answers in order, so the
/// oldest command still waiting gets the next reply. A plain value, tested without sockets.
///
/// A command whose caller gave up (timeout) keeps its place, so that its reply, when it comes,
/// is consumed by it and not handed to the command behind it.
public struct RedisCommandQueue<Waiter> {
    private var waiters: [Waiter?] = []
    private var head = 0
    public private(set) var isClosed = false

    public init() {}

    /// Commands sent and not yet answered (abandoned ones included).
    public var inFlight: Int { waiters.count - head }

    /// The ticket the next `enqueue` will return.
    public var nextTicket: Int { waiters.count + dropped }

    public enum Enqueue {
        case send
        /// The connection is closed: fail the command now.
        case fail
    }

    /// Records a command about to be written; returns its ticket (its position).
    public mutating func enqueue(_ waiter: Waiter) -> (Enqueue, ticket: Int) {
        guard !isClosed else { return (.fail, -1) }
        waiters.append(waiter)
        return (.send, waiters.count - 1 + dropped)
    }

    /// The waiter of the next reply: nil when nobody waits for it (abandoned), or when the reply
    /// is unexpected (`unexpected` is then true: the stream is out of sync).
    public mutating func receive() -> (waiter: Waiter?, unexpected: Bool) {
        guard head < waiters.count else { return (nil, true) }
        let waiter = waiters[head]
        waiters[head] = nil
        head += 1
        compact()
        return (waiter, false)
    }

    /// The caller of `ticket` gave up: its reply will be dropped. Returns its waiter if it was
    /// still waiting.
    public mutating func abandon(_ ticket: Int) -> Waiter? {
        let index = ticket - dropped
        guard index >= head, index < waiters.count else { return nil }
        let waiter = waiters[index]
        waiters[index] = nil
        return waiter
    }

    /// Abandons every waiter still waiting that `expired` picks; returns them (to be failed).
    public mutating func abandonAll(where expired: (Waiter) -> Bool) -> [Waiter] {
        var abandoned: [Waiter] = []
        for index in head..<waiters.count {
            guard let waiter = waiters[index], expired(waiter) else { continue }
            waiters[index] = nil
            abandoned.append(waiter)
        }
        return abandoned
    }

    /// The waiters still waiting, oldest first.
    public var waiting: [Waiter] { waiters[head...].compactMap { $0 } }

    /// The connection closed: every waiter still waiting, to be failed.
    public mutating func close() -> [Waiter] {
        isClosed = true
        let remaining = waiters[head...].compactMap { $0 }
        dropped += waiters.count
        waiters.removeAll()
        head = 0
        return remaining
    }

    /// Tickets are absolute positions; `dropped` counts positions already compacted away.
    private var dropped = 0

    private mutating func compact() {
        if head > 1024 && head * 2 > waiters.count {
            waiters.removeFirst(head)
            dropped += head
            head = 0
        }
    }
}
