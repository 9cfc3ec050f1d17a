/// When each precomputed listing is recomputed: ahead of its refresh interval, and after a purge
/// of one of its tags.
///
/// A purge after a quiet spell (no purge-driven recompute begun within `debounce`) is recomputed
/// at once: a single change shows in the time of one origin fetch. Purges that follow it are
/// debounced: recomputed once purges have stopped for `debounce`, or once the served version has
/// been behind for half its `maxStale`, whichever comes first. So a long burst of purges costs
/// one recompute at its start and one every `maxStale / 2`, not one per purge. Never more than a
/// given number at once. Pure state, tested without a clock or an origin; the caller brings the
/// time (nanoseconds) and runs the fetches.
public struct ListingSchedule<ID: Hashable & Sendable>: Sendable {
    public struct Timing: Sendable, Equatable {
        public var refresh: UInt64
        public var debounce: UInt64
        public var maxStale: UInt64

        public init(refresh: Duration, debounce: Duration, maxStale: Duration) {
            self.refresh = refresh.nanoseconds
            self.debounce = debounce.nanoseconds
            self.maxStale = maxStale.nanoseconds
        }
    }

    struct Entry: Sendable {
        var timing: Timing
        /// When the current version was fetched; nil before the first.
        var fetchedAt: UInt64?
        var due: UInt64
        /// The first purge the served version has not caught up with.
        var staleSince: UInt64?
        var inFlight = false
        /// A purge landed while a fetch was under way: that fetch may predate it.
        var purgedDuringFlight: UInt64?
        var failures = 0
        /// When the last recompute called for by a purge began.
        var purgeFetchStartedAt: UInt64?
        /// When the last purge arrived.
        var lastPurgeAt: UInt64?

        /// No purge-driven recompute began within the debounce.
        func noRecentRecompute(now: UInt64) -> Bool {
            purgeFetchStartedAt.map { now &- $0 >= timing.debounce } ?? true
        }

        /// Neither a purge nor a purge-driven recompute within the debounce: a purge now is a
        /// single change, not part of a burst.
        func isQuiet(now: UInt64) -> Bool {
            noRecentRecompute(now: now) && (lastPurgeAt.map { now &- $0 >= timing.debounce } ?? true)
        }
    }

    private var entries: [ID: Entry] = [:]
    public private(set) var inFlight = 0

    public init() {}

    public var count: Int { entries.count }
    public var ids: [ID] { Array(entries.keys) }

    /// Adds a listing, due at once (warm-up). Adding one already known changes nothing.
    public mutating func add(_ id: ID, timing: Timing, now: UInt64) {
        guard entries[id] == nil else { return }
        entries[id] = Entry(timing: timing, due: now)
    }

    public mutating func remove(_ id: ID) {
        if let entry = entries.removeValue(forKey: id), entry.inFlight { inFlight -= 1 }
    }

    /// A purge touched `id`: recompute at once after a quiet spell, else after the debounce; serve
    /// the current version meanwhile.
    public mutating func invalidate(_ id: ID, now: UInt64) {
        guard var entry = entries[id] else { return }
        if entry.inFlight {
            entry.purgedDuringFlight = entry.purgedDuringFlight ?? now
        } else {
            let since = entry.staleSince ?? now
            let alreadyDue = entry.staleSince != nil && entry.due <= now
            entry.staleSince = since
            // A recompute already due (not yet begun) already covers this purge.
            if !alreadyDue {
                entry.due = entry.isQuiet(now: now) ? now : Self.debounced(now: now, staleSince: since, timing: entry.timing)
            }
        }
        entry.lastPurgeAt = now
        entries[id] = entry
    }

    /// Listings to fetch now (marked in flight), at most `limit` in flight in all, most overdue first.
    public mutating func takeDue(now: UInt64, limit: Int) -> [ID] {
        guard inFlight < limit else { return [] }
        let due = entries.filter { !$0.value.inFlight && $0.value.due <= now }.sorted { $0.value.due < $1.value.due }
        let taken = due.prefix(limit - inFlight).map(\.key)
        for id in taken {
            entries[id]!.inFlight = true
            if entries[id]!.staleSince != nil { entries[id]!.purgeFetchStartedAt = now }
        }
        inFlight += taken.count
        return taken
    }

    /// A fetch of `id` ended; `succeeded` when a new version is now served.
    public mutating func finished(_ id: ID, succeeded: Bool, now: UInt64) {
        guard var entry = entries[id], entry.inFlight else { return }
        entry.inFlight = false
        inFlight -= 1
        if succeeded {
            entry.fetchedAt = now
            entry.failures = 0
            entry.staleSince = entry.purgedDuringFlight
            if let since = entry.purgedDuringFlight {
                // The version just fetched may predate that purge.
                entry.due = entry.noRecentRecompute(now: now) ? now : Self.debounced(now: now, staleSince: since, timing: entry.timing)
            } else {
                entry.due = now &+ entry.timing.refresh
            }
        } else {
            entry.failures += 1
            if let purged = entry.purgedDuringFlight, entry.staleSince == nil { entry.staleSince = purged }
            // Retried sooner than the refresh interval, backing off: 250 ms, 500 ms, ... up to it.
            let backoff = min(entry.timing.refresh, 250_000_000 &<< UInt64(min(entry.failures - 1, 16)))
            entry.due = now &+ backoff
        }
        entry.purgedDuringFlight = nil
        entries[id] = entry
    }

    /// A debounce that restarts with each purge, but never past half the staleness allowed.
    private static func debounced(now: UInt64, staleSince: UInt64, timing: Timing) -> UInt64 {
        min(now &+ timing.debounce, staleSince &+ timing.maxStale / 2)
    }

    /// Whether the version held for `id` may be served: there is one, and it has not been stale
    /// (behind a purge) for longer than the listing's maximum staleness.
    public func isServable(_ id: ID, now: UInt64) -> Bool {
        guard let entry = entries[id], entry.fetchedAt != nil else { return false }
        guard let since = entry.staleSince else { return true }
        return now &- since <= entry.timing.maxStale
    }

    /// Whether every listing has a version.
    public var isWarm: Bool { entries.values.allSatisfy { $0.fetchedAt != nil } }
    public var warmCount: Int { entries.values.filter { $0.fetchedAt != nil }.count }

    /// The earliest time something falls due (nil: nothing waits).
    public var nextDue: UInt64? { entries.values.filter { !$0.inFlight }.map(\.due).min() }
}
