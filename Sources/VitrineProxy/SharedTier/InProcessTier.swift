import NIOCore
import Synchronization
import VitrineCore

/// The shared tier when no Redis is configured (the demo): the same semantics as `RedisTier`
/// (encoded entries, tag purge sequences checked on lookup, leases), in this process's memory and
/// bounded by bytes. It shares nothing with other nodes, so it fans nothing out.
package final class InProcessTier: SharedTier {
    private struct Stored {
        var bytes: ByteBuffer
        var cost: Int
        var bornSequence: Int64
        var tags: [String]
        var expiresAt: UInt64
        /// The sequence of the last soft purge of this entry by prefix.
        var softPurgedAt: Int64 = 0
    }

    private struct State {
        var entries: [CacheKey: Stored] = [:]
        /// Insertion order, for eviction once over budget.
        var order: [CacheKey] = []
        var orderHead = 0
        var bytes = 0
        var sequence: Int64 = 0
        var tagPurges: [String: Int64] = [:]
        var softTagPurges: [String: Int64] = [:]
        var leases: [CacheKey: UInt64] = [:]
    }

    private let contents = Mutex(State())
    private let budget: Int
    private let clock: any CacheClock

    package init(budget: Int, clock: any CacheClock) {
        self.budget = budget
        self.clock = clock
    }

    package var state: String { "off" }

    package func lookup(_ key: CacheKey, lease: Duration?, on loop: any EventLoop) -> EventLoopFuture<SharedTierLookup?> {
        let now = clock.nanoseconds()
        let found = contents.withLock { state -> SharedTierLookup in
            let sequence = state.sequence
            if let stored = state.entries[key], stored.expiresAt > now,
                !stored.tags.contains(where: { (state.tagPurges[$0] ?? 0) > stored.bornSequence })
            {
                let soft =
                    stored.softPurgedAt > stored.bornSequence
                    || stored.tags.contains { (state.softTagPurges[$0] ?? 0) > stored.bornSequence }
                return SharedTierLookup(entry: L2EntryCodec.decode(stored.bytes), sequence: sequence, softPurged: soft)
            }
            if let removed = state.entries.removeValue(forKey: key) { state.bytes -= removed.cost }
            if let held = state.leases[key], held > now { return SharedTierLookup(entry: nil, sequence: sequence, mayFetch: false) }
            if let lease { state.leases[key] = now &+ lease.nanoseconds }
            return SharedTierLookup(entry: nil, sequence: sequence)
        }
        return loop.makeSucceededFuture(found)
    }

    package func releaseLease(_ key: CacheKey, on loop: any EventLoop) {
        contents.withLock { _ = $0.leases.removeValue(forKey: key) }
    }

    package func store(_ key: CacheKey, entry: L2Entry, extraTags: [String], sequence: Int64, ttl: Duration, on loop: any EventLoop) {
        let bytes = L2EntryCodec.encode(entry).compacted()
        // Charged what the entry's storage holds (and its key), not what it carries.
        let cost = bytes.storageCapacity + key.value.utf8.count + 128
        guard cost <= budget else { return }
        let expiresAt = clock.nanoseconds() &+ ttl.nanoseconds
        contents.withLock { state in
            state.leases[key] = nil
            if let previous = state.entries[key] { state.bytes -= previous.cost } else { state.order.append(key) }
            state.entries[key] = Stored(bytes: bytes, cost: cost, bornSequence: sequence, tags: entry.tags + extraTags, expiresAt: expiresAt)
            state.bytes += cost
            // Oldest first: the tier is a second chance, not the main store.
            while state.bytes > budget, state.orderHead < state.order.count {
                let victim = state.order[state.orderHead]
                state.orderHead += 1
                if let removed = state.entries.removeValue(forKey: victim) { state.bytes -= removed.cost }
            }
            if state.orderHead > 4096 && state.orderHead * 2 > state.order.count {
                state.order = state.order[state.orderHead...].filter { state.entries[$0] != nil }
                state.orderHead = 0
            }
        }
    }

    package func purge(_ request: PurgeRequest, keys: [CacheKey], implicitTags: [String], on loop: any EventLoop) -> EventLoopFuture<Void> {
        contents.withLock { state in
            state.sequence += 1
            let sequence = state.sequence
            if request.soft {
                for tag in request.tags + implicitTags { state.softTagPurges[tag] = sequence }
                for prefix in request.prefixes {
                    for key in state.entries.keys where key.value.hasPrefix(prefix) { state.entries[key]?.softPurgedAt = sequence }
                }
            } else {
                for tag in request.tags + implicitTags { state.tagPurges[tag] = sequence }
                for key in keys {
                    if let removed = state.entries.removeValue(forKey: key) { state.bytes -= removed.cost }
                }
                for prefix in request.prefixes {
                    for key in state.entries.keys where key.value.hasPrefix(prefix) {
                        if let removed = state.entries.removeValue(forKey: key) { state.bytes -= removed.cost }
                    }
                }
            }
        }
        return loop.makeSucceededVoidFuture()
    }
}
