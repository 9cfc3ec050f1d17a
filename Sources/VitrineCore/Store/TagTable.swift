import Synchronization

/// The sequence number of the last hard and soft purge of one tag, and when it was last marked.
struct TagMarks: Sendable {
    var hard: UInt64 = 0
    var soft: UInt64 = 0
    /// Monotonic nanoseconds of the last mark.
    var at: UInt64 = 0
}

/// Tag → last purge sequence, sharded by tag so purges of different tags do not contend.
///
/// A purge by tag writes one row here, whatever the number of entries carrying the tag: the
/// entries are checked against their tags' marks when next looked up, and reclaimed then or by
/// eviction. Rows are only written for purged tags, and reclaimed once they can no longer matter
/// (`sweep`): older than any fetch can last, and carried by no stored entry.
final class TagTable: Sendable {
    private struct ShardState {
        var marks: [String: TagMarks] = [:]
        /// Row count at which the shard is next swept (amortised: doubles with what survives).
        var nextSweep = TagTable.firstSweep
    }

    private final class Shard: Sendable {
        let state = Mutex(ShardState())
    }

    static let firstSweep = 1024
    private let shards: [Shard]

    init(shardCount: Int = 16) {
        shards = (0..<shardCount).map { _ in Shard() }
    }

    /// Records a purge of `tag`, taking the new sequence number from `nextSequence` while the
    /// tag's shard is locked, so that a reader that sees the new sequence also sees the mark.
    /// - Returns: whether the tag's shard has grown enough to be swept.
    @discardableResult
    func mark(_ tag: String, mode: PurgeMode, now: UInt64, nextSequence: () -> UInt64) -> Bool {
        shard(for: tag).state.withLock { state in
            let sequence = nextSequence()
            switch mode {
            case .hard: state.marks[tag, default: TagMarks()].hard = sequence
            case .soft: state.marks[tag, default: TagMarks()].soft = sequence
            }
            state.marks[tag]?.at = now
            return state.marks.count >= state.nextSweep
        }
    }

    func marks(for tag: String) -> TagMarks? {
        shard(for: tag).state.withLock { $0.marks[tag] }
    }

    var count: Int {
        shards.reduce(0) { $0 + $1.state.withLock { $0.marks.count } }
    }

    /// Removes the rows of `tag`'s shard last marked before `horizon` that no stored entry carries
    /// any more. `carried` is asked without the shard's lock held (it takes the store's locks,
    /// which a lookup holds while it reads marks here). A row marked again meanwhile is kept.
    func sweep(shardOf tag: String, horizon: UInt64, carried: (Set<String>) -> Set<String>) {
        let shard = shard(for: tag)
        let candidates = shard.state.withLock { state in
            Set(state.marks.compactMap { $0.value.at < horizon ? $0.key : nil })
        }
        let keep = candidates.isEmpty ? [] : carried(candidates)
        shard.state.withLock { state in
            for tag in candidates where !keep.contains(tag) {
                if let marks = state.marks[tag], marks.at < horizon { state.marks[tag] = nil }
            }
            state.nextSweep = Swift.max(Self.firstSweep, state.marks.count * 2)
        }
    }

    private func shard(for tag: String) -> Shard {
        shards[Int(truncatingIfNeeded: CacheKey.fnv1a(tag) % UInt64(shards.count))]
    }
}
