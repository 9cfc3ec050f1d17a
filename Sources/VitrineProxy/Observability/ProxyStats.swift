import Synchronization

/// Counters since start, for `GET /stats`. Each is one relaxed atomic add on the request path.
package final class ProxyStats: Sendable {
    package enum Counter: Int, CaseIterable {
        case requests, hits, misses, stale, passes, notModified, purges, purgedEntries
        case originRequests, originErrors, clientErrors, stored
        case clientTimeouts, connectionsRefused
        case l2Hits, l2Misses, l2Errors, remotePurges
        /// Writes answered before their purge reached the shared tier (Redis down or slow).
        case localOnlyWritePurges
        /// Requests that waited for another request's fetch of the same key.
        case collapsed
        /// Stale entries the origin revalidated with 304.
        case revalidated
        /// Times an origin response was paused because its client had too much unsent (a full
        /// socket, or an HTTP/2 stream past 64 KiB queued): a slow client holds the origin, never
        /// our memory.
        case originPauses
    }

    private let counters: [Slot] = Counter.allCases.map { _ in Slot() }

    package init() {}

    private final class Slot: Sendable {
        let value = Atomic<Int>(0)
    }

    package func increment(_ counter: Counter, by amount: Int = 1) {
        counters[counter.rawValue].value.add(amount, ordering: .relaxed)
    }

    func value(_ counter: Counter) -> Int {
        counters[counter.rawValue].value.load(ordering: .relaxed)
    }
}
