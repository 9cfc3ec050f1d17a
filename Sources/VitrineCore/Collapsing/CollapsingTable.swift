/// Request collapsing as a plain value: for each key at most one origin fetch (the leader); other
/// requests for the key wait for it. A key whose last response could not be stored is remembered
/// as "pass" for a while (Varnish's hit-for-miss), so a hot uncacheable URL never makes clients
/// queue behind each other.
///
/// Generic over the waiter so it is tested without event loops; the proxy keeps one behind a lock.
public struct CollapsingTable<Waiter> {
    public enum Join: Equatable {
        /// Fetch it; call `finish` when done.
        case lead
        /// A fetch is under way; the waiter was queued.
        case wait
        /// Recently uncacheable: fetch it alone, do not wait, do not lead.
        case pass
    }

    private var flights: [CacheKey: [Waiter]] = [:]
    private var passUntil: [CacheKey: UInt64] = [:]

    public init() {}

    /// Keys with a fetch under way.
    public var inFlight: Int { flights.count }

    public mutating func join(_ key: CacheKey, waiter: Waiter, now: UInt64) -> Join {
        if let until = passUntil[key] {
            if now < until { return .pass }
            passUntil[key] = nil
        }
        if flights[key] != nil {
            flights[key]!.append(waiter)
            return .wait
        }
        flights[key] = []
        return .lead
    }

    /// Starts a fetch without a waiting client (a background refresh); false when one is under way.
    public mutating func lead(_ key: CacheKey) -> Bool {
        guard flights[key] == nil else { return false }
        flights[key] = []
        return true
    }

    /// Ends the fetch for `key` and hands back its waiters.
    public mutating func finish(_ key: CacheKey) -> [Waiter] {
        flights.removeValue(forKey: key) ?? []
    }

    /// Remembers `key` as uncacheable until `until`; forgets expired ones once there are many.
    public mutating func markPass(_ key: CacheKey, until: UInt64, now: UInt64) {
        passUntil[key] = until
        if passUntil.count >= nextPrune {
            passUntil = passUntil.filter { $0.value > now }
            nextPrune = max(10_000, passUntil.count * 2)
        }
    }

    /// Size at which expired pass marks are next swept (amortised).
    private var nextPrune = 10_000

    /// Keys currently remembered as pass (for tests and stats).
    public var passCount: Int { passUntil.count }

    /// Removes a waiter that gave up; true when it was still waiting.
    public mutating func leave(_ key: CacheKey, where matches: (Waiter) -> Bool) -> Bool {
        guard let index = flights[key]?.firstIndex(where: matches) else { return false }
        flights[key]!.remove(at: index)
        return true
    }
}
