import Synchronization

/// The sequence number of the last hard and soft purge of one tag.
struct TagMarks: Sendable {
    var hard: UInt64 = 0
    var soft: UInt64 = 0
}

/// Tag → last purge sequence, sharded by tag so purges of different tags do not contend.
///
/// A purge by tag writes one row here, whatever the number of entries carrying the tag: the
/// entries are checked against their tags' marks when next looked up, and reclaimed then or by
/// eviction. Rows are only written for purged tags.
final class TagTable: Sendable {
    private final class Shard: Sendable {
        let marks = Mutex<[String: TagMarks]>([:])
    }

    private let shards: [Shard]

    init(shardCount: Int = 16) {
        shards = (0..<shardCount).map { _ in Shard() }
    }

    /// Records a purge of `tag`, taking the new sequence number from `nextSequence` while the
    /// tag's shard is locked, so that a reader that sees the new sequence also sees the mark.
    func mark(_ tag: String, mode: PurgeMode, nextSequence: () -> UInt64) {
        shard(for: tag).marks.withLock { marks in
            let sequence = nextSequence()
            switch mode {
            case .hard: marks[tag, default: TagMarks()].hard = sequence
            case .soft: marks[tag, default: TagMarks()].soft = sequence
            }
        }
    }

    func marks(for tag: String) -> TagMarks? {
        shard(for: tag).marks.withLock { $0[tag] }
    }

    var count: Int {
        shards.reduce(0) { $0 + $1.marks.withLock { $0.count } }
    }

    private func shard(for tag: String) -> Shard {
        shards[Int(truncatingIfNeeded: CacheKey.fnv1a(tag) % UInt64(shards.count))]
    }
}
