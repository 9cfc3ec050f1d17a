import Synchronization

/// What the store needs to know about a value: how many bytes it holds.
public protocol CacheCosted {
    /// Bytes this value keeps alive (body, encoded head, validators).
    var cost: Int { get }
}

/// A value found by a lookup, with its age and remaining freshness.
public struct CacheHit<Value: Sendable>: Sendable {
    public let value: Value
    /// Nanoseconds since the value was stored.
    public let residentNanoseconds: UInt64
    /// Nanoseconds of freshness left; zero or negative when stale.
    public let remainingNanoseconds: Int64
}

/// The outcome of a lookup.
public enum CacheLookup<Value: Sendable>: Sendable {
    case fresh(CacheHit<Value>)
    /// Past its freshness (or soft-purged) but within its grace: servable where stale is allowed.
    case stale(CacheHit<Value>)
    case miss
}

extension CacheLookup {
    /// The entry found, fresh or stale.
    public var hit: CacheHit<Value>? {
        switch self {
        case .fresh(let hit), .stale(let hit): return hit
        case .miss: return nil
        }
    }
}

/// The outcome of a store.
public enum StoreOutcome: Sendable, Equatable {
    case stored
    /// A purge matching the key happened after the fetch began: storing it would serve stale data.
    case purgedDuringFetch
    /// Larger than a shard's whole budget.
    case tooLarge
}

/// The L1 cache: sharded by key hash, bounded by bytes, expiring by TTL, purged by key, prefix
/// and tag.
///
/// Each shard has its own lock, held only for a dictionary lookup on a hit. Tag purges cost one
/// row in the tag table whatever the number of entries tagged: an entry is checked against its
/// tags when looked up after any purge (a global purge sequence tells whether anything changed
/// since it was last checked), and is reclaimed then or by eviction. Eviction is SIEVE.
public final class L1Store<Value: CacheCosted & Sendable>: Sendable {
    /// Bytes charged per entry on top of its value, for the index, slot and policy bookkeeping.
    public static var entryOverhead: Int { 160 }

    /// What an entry's tags hold: each string in the entry and in its shard's tag counts, and
    /// room for its row in the tag table once purged (strings past 15 bytes live on the heap).
    static func tagCost(_ tags: [String]) -> Int {
        tags.reduce(0) { $0 + 3 * ($1.utf8.count + 48) }
    }

    private let shards: [ShardBox]
    private let tags: TagTable
    private let recentPurges: Mutex<RecentPurges>
    /// How long purges are remembered for fetches under way (the longest fetch, and more).
    private let raceWindow: UInt64
    private let sequence = Atomic<UInt64>(0)
    private let entries = Atomic<Int>(0)
    private let bytes = Atomic<Int>(0)
    /// The clock the store reads (monotonic for TTLs, wall for HTTP dates).
    public let clock: any CacheClock
    /// The total byte budget across shards.
    public let byteBudget: Int

    /// - Parameters:
    ///   - byteBudget: the most bytes all entries may hold together.
    ///   - shardCount: independent lock domains; more shards, less contention.
    ///   - raceWindow: how long key and prefix purges are remembered to refuse stores of responses
    ///     fetched before them: at least the longest origin fetch.
    // Kept generic: Swift 6.3's optimiser crashes (CopyPropagation) specialising it across
    // modules, and it runs once per store.
    @_semantics("optimize.sil.specialize.generic.never")
    public init(
        byteBudget: Int,
        shardCount: Int = 16,
        raceWindow: Duration = .seconds(300),
        clock: any CacheClock = SystemClock()
    ) {
        precondition(shardCount > 0, "shardCount must be positive")
        let perShard = byteBudget / shardCount
        self.byteBudget = byteBudget
        self.shards = (0..<shardCount).map { _ in ShardBox(budget: perShard) }
        self.tags = TagTable()
        self.recentPurges = Mutex(RecentPurges(window: raceWindow.nanoseconds))
        self.raceWindow = raceWindow.nanoseconds
        self.clock = clock
    }

    /// Entries currently held (including ones purged by tag but not yet reclaimed).
    public var entryCount: Int { entries.load(ordering: .relaxed) }
    /// Bytes currently charged.
    public var byteCount: Int { bytes.load(ordering: .relaxed) }
    /// The clock the store reads.
    public var now: UInt64 { clock.nanoseconds() }

    /// Marks the start of an origin fetch; pass the token to `store`.
    public func fetchToken() -> FetchToken {
        FetchToken(sequence: sequence.load(ordering: .acquiring), startedAt: clock.nanoseconds())
    }

    // MARK: Lookup

    /// Finds `key`, checking its freshness and whether anything purged it.
    public func lookup(_ key: CacheKey) -> CacheLookup<Value> {
        let current = sequence.load(ordering: .acquiring)
        let now = clock.nanoseconds()
        return shard(for: key).state.withLock { shard in
            guard let slotIndex = shard.index[key] else { return .miss }
            var slot = shard.slots[slotIndex]!
            if slot.validatedSequence != current {
                switch validate(slot) {
                case .valid:
                    break
                case .softPurged:
                    slot.expiresAt = Swift.min(slot.expiresAt, now)
                case .purged:
                    release(shard.remove(slotIndex))
                    return .miss
                }
                slot.validatedSequence = current
                shard.slots[slotIndex] = slot
            }
            if now >= slot.staleUntil && now >= slot.expiresAt {
                release(shard.remove(slotIndex))
                return .miss
            }
            shard.policy.markVisited(slotIndex)
            let hit = CacheHit(
                value: slot.value,
                residentNanoseconds: now &- slot.storedAt,
                remainingNanoseconds: Int64(bitPattern: slot.expiresAt &- now)
            )
            return now < slot.expiresAt ? .fresh(hit) : .stale(hit)
        }
    }

    private enum Verdict { case valid, softPurged, purged }

    private func validate(_ slot: Slot) -> Verdict {
        var verdict = Verdict.valid
        for tag in slot.tags {
            guard let marks = tags.marks(for: tag) else { continue }
            if marks.hard > slot.bornSequence { return .purged }
            if marks.soft > slot.bornSequence { verdict = .softPurged }
        }
        return verdict
    }

    // MARK: Store

    /// Stores `value` under `key` unless a purge matching it happened since `token` was taken.
    ///
    /// - Parameters:
    ///   - ttl: how long the value is fresh from now.
    ///   - grace: how long past `ttl` it is kept for stale serving and revalidation.
    @discardableResult
    public func store(
        _ value: Value,
        for key: CacheKey,
        tags: [String] = [],
        ttl: Duration,
        grace: Duration = .zero,
        token: FetchToken
    ) -> StoreOutcome {
        let now = clock.nanoseconds()
        let cost = value.cost + key.value.utf8.count + Self.tagCost(tags) + Self.entryOverhead
        let slot = Slot(
            key: key,
            value: value,
            tags: tags,
            cost: cost,
            storedAt: now,
            expiresAt: now &+ ttl.nanoseconds,
            staleUntil: now &+ ttl.nanoseconds &+ grace.nanoseconds,
            bornSequence: token.sequence,
            validatedSequence: token.sequence
        )
        return shard(for: key).state.withLock { shard in
            guard cost <= shard.budget else { return .tooLarge }
            // Checked under the shard lock: a purge records itself before it takes this lock, so
            // either this check sees it or the purge removes what is stored here.
            if recentPurges.withLock({ $0.purged(key, since: token) }) { return .purgedDuringFetch }
            if let existing = shard.index[key] { release(shard.remove(existing)) }
            while shard.bytes + cost > shard.budget, let victim = shard.policy.nextVictim() {
                release(shard.remove(victim))
            }
            shard.insert(slot)
            entries.add(1, ordering: .relaxed)
            bytes.add(cost, ordering: .relaxed)
            return .stored
        }
    }

    /// Whether `key`, a prefix of it or one of `tags` was purged (hard or soft) since `token`:
    /// a response fetched with that token must then not be handed to requests that came after.
    public func wasPurged(_ key: CacheKey, tags: [String], since token: FetchToken) -> Bool {
        if recentPurges.withLock({ $0.purged(key, since: token) }) { return true }
        return tags.contains { tag in
            guard let marks = self.tags.marks(for: tag) else { return false }
            return Swift.max(marks.hard, marks.soft) > token.sequence
        }
    }

    // MARK: Purge

    /// Purges one key. Returns how many entries it matched (0 or 1).
    @discardableResult
    public func purge(key: CacheKey, mode: PurgeMode = .hard) -> Int {
        let now = clock.nanoseconds()
        if mode == .hard {
            let sequence = self.sequence.add(1, ordering: .acquiringAndReleasing).newValue
            recentPurges.withLock { $0.recordKey(key, sequence: sequence, at: now) }
        }
        return shard(for: key).state.withLock { shard in
            guard let slotIndex = shard.index[key] else { return 0 }
            switch mode {
            case .hard: release(shard.remove(slotIndex))
            case .soft: shard.slots[slotIndex]!.expiresAt = Swift.min(shard.slots[slotIndex]!.expiresAt, now)
            }
            return 1
        }
    }

    /// Purges every key starting with `prefix` (a key is host + target). Scans each shard in
    /// turn: cost grows with the entry count, so it is meant for operators, not for hot paths.
    @discardableResult
    public func purge(prefix: String, mode: PurgeMode = .hard) -> Int {
        let now = clock.nanoseconds()
        if mode == .hard {
            let sequence = self.sequence.add(1, ordering: .acquiringAndReleasing).newValue
            recentPurges.withLock { $0.recordPrefix(prefix, sequence: sequence, at: now) }
        }
        var matched = 0
        for box in shards {
            matched += box.state.withLock { shard in
                let matching = shard.index.compactMap { $0.key.value.hasPrefix(prefix) ? $0.value : nil }
                for slotIndex in matching {
                    switch mode {
                    case .hard: release(shard.remove(slotIndex))
                    case .soft: shard.slots[slotIndex]!.expiresAt = Swift.min(shard.slots[slotIndex]!.expiresAt, now)
                    }
                }
                return matching.count
            }
        }
        return matched
    }

    /// Purges every entry carrying `tag`, in constant time. Returns how many entries carried it
    /// (entries already purged by an earlier purge and not yet reclaimed are counted again).
    @discardableResult
    public func purge(tag: String, mode: PurgeMode = .hard) -> Int {
        let now = clock.nanoseconds()
        let crowded = tags.mark(tag, mode: mode, now: now) { self.sequence.add(1, ordering: .acquiringAndReleasing).newValue }
        if crowded { reclaimTagRows(near: tag, now: now) }
        return shards.reduce(0) { total, box in total + box.state.withLock { $0.tagCounts[tag] ?? 0 } }
    }

    /// Tag rows in use: purged tags that a stored entry may still carry, or that a fetch under
    /// way may still store.
    public var tagRowCount: Int { tags.count }

    /// Drops the tag-table rows (in `tag`'s shard) that can no longer matter: marked longer ago
    /// than any fetch lasts, so no response fetched before them can still arrive, and carried by
    /// no stored entry, so none can be found that they would purge.
    private func reclaimTagRows(near tag: String, now: UInt64) {
        guard now > raceWindow else { return }
        tags.sweep(shardOf: tag, horizon: now - raceWindow) { candidates in
            var carried = Set<String>()
            for box in shards {
                box.state.withLock { shard in
                    for candidate in candidates where shard.tagCounts[candidate] != nil { carried.insert(candidate) }
                }
            }
            return carried
        }
    }

    /// Purges every entry (every key starts with the empty prefix). A hard purge also refuses the
    /// stores of fetches already under way. Returns how many entries it matched.
    @discardableResult
    public func purgeAll(mode: PurgeMode = .hard) -> Int {
        purge(prefix: "", mode: mode)
    }

    // MARK: Internals

    private func release(_ cost: Int) {
        entries.subtract(1, ordering: .relaxed)
        bytes.subtract(cost, ordering: .relaxed)
    }

    @inline(__always)
    private func shard(for key: CacheKey) -> ShardBox {
        shards[Int(truncatingIfNeeded: key.shardHash % UInt64(shards.count))]
    }

    fileprivate struct Slot: Sendable {
        let key: CacheKey
        let value: Value
        let tags: [String]
        let cost: Int
        let storedAt: UInt64
        var expiresAt: UInt64
        let staleUntil: UInt64
        let bornSequence: UInt64
        var validatedSequence: UInt64
    }

    fileprivate struct Shard: Sendable {
        var index: [CacheKey: Int] = [:]
        var slots: [Slot?] = []
        var freeSlots: [Int] = []
        var policy = SieveQueue()
        var bytes = 0
        var tagCounts: [String: Int] = [:]
        let budget: Int

        mutating func insert(_ slot: Slot) {
            let slotIndex: Int
            if let free = freeSlots.popLast() {
                slotIndex = free
                slots[slotIndex] = slot
            } else {
                slotIndex = slots.count
                slots.append(slot)
            }
            index[slot.key] = slotIndex
            policy.insert(slotIndex)
            bytes += slot.cost
            for tag in slot.tags { tagCounts[tag, default: 0] += 1 }
        }

        /// Removes the slot and returns the bytes it freed.
        mutating func remove(_ slotIndex: Int) -> Int {
            let slot = slots[slotIndex]!
            slots[slotIndex] = nil
            freeSlots.append(slotIndex)
            index[slot.key] = nil
            policy.remove(slotIndex)
            bytes -= slot.cost
            for tag in slot.tags {
                let remaining = tagCounts[tag, default: 1] - 1
                tagCounts[tag] = remaining == 0 ? nil : remaining
            }
            return slot.cost
        }
    }

    private final class ShardBox: Sendable {
        let state: Mutex<Shard>
        init(budget: Int) { state = Mutex(Shard(budget: budget)) }
    }
}
