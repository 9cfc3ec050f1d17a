import Synchronization

/// Purges this node made that did not reach the shared tier (Redis down, or cut off from this
/// node): already applied to this node's L1, kept here in order until they are delivered to L2
/// and the rest of the fleet. Bounded: past `capacity` the purges that do not fit are not kept,
/// and the node remembers that it overflowed, so that the fleet is told to purge everything once
/// Redis is back (what was lost cannot be named).
final class PurgeOutbox: Sendable {
    struct Status: Sendable {
        var backlog = 0
        var delivered = 0
        var overflowed = false
        var overflows = 0
    }

    private struct State {
        var held: [PurgeRequest] = []
        var head = 0
        var status = Status()
    }

    private let state = Mutex(State())
    let capacity: Int

    init(capacity: Int = 10_000) {
        self.capacity = capacity
    }

    var status: Status { state.withLock { $0.status } }
    var isEmpty: Bool { state.withLock { $0.status.backlog == 0 && !$0.status.overflowed } }

    /// Keeps `request` for delivery; false when it did not fit (the node has overflowed).
    @discardableResult
    func hold(_ request: PurgeRequest) -> Bool {
        state.withLock { state in
            guard state.held.count - state.head < capacity else {
                state.status.overflowed = true
                state.status.overflows += 1
                return false
            }
            state.held.append(request)
            state.status.backlog = state.held.count - state.head
            return true
        }
    }

    /// The next purge to deliver: the oldest held, or, once they are all delivered after an
    /// overflow, a purge of everything.
    func next() -> PurgeRequest? {
        state.withLock { state in
            if state.head < state.held.count { return state.held[state.head] }
            return state.status.overflowed ? PurgeRequest(everything: true) : nil
        }
    }

    /// `next()` was delivered.
    func delivered() {
        state.withLock { state in
            if state.head < state.held.count {
                state.head += 1
                if state.head == state.held.count {
                    state.held.removeAll(keepingCapacity: false)
                    state.head = 0
                }
            } else {
                state.status.overflowed = false
            }
            state.status.backlog = state.held.count - state.head
            state.status.delivered += 1
        }
    }
}
