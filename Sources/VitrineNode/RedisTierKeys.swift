import VitrineProxy
import VitrineRedis

/// Where the shared tier keeps things in Redis, laid out so that no command or script needs keys
/// from two cluster slots:
///
/// - an entry's keys share the slot of its cache key (`P:{KEY}:e` the entry, `:m` its metadata,
///   `:l` its fetch lease, `:s` its soft-purge mark);
/// - a tag's purge marks share the slot of the tag (`P:{TAG}:t` hard, `P:{TAG}:st` soft);
/// - the purge-everything tag's marks are kept in 16 copies (`P:{#all:N}:t`) that a purge writes
///   all of and a lookup reads one of, so that every lookup does not go to one shard;
/// - what the fleet shares (`P:{CHANNEL}:seq` the purge sequence, `:log` the purge log, `:gen`
///   its generation) shares the slot of the fan-out channel, so that one script can log a purge
///   and publish it (sharded pub/sub sends a message from the channel's slot).
///
/// The names end in a suffix of their own, so no two kinds can collide whatever a key or tag holds.
struct RedisTierKeys: Sendable {
    /// `P`: one fleet's keys, so that fleets (or tests) can share a Redis.
    let prefix: String
    let channel: String

    static let everythingCopies = 16

    init(prefix: String, channel: String) {
        self.prefix = prefix
        self.channel = channel
    }

    func entry(_ key: String) -> String { prefix + ":{" + key + "}:e" }
    func meta(_ key: String) -> String { prefix + ":{" + key + "}:m" }
    func lease(_ key: String) -> String { prefix + ":{" + key + "}:l" }
    func softMark(_ key: String) -> String { prefix + ":{" + key + "}:s" }

    /// The hard and the soft mark a lookup of `key` reads for `tag` (one slot).
    func tagMarks(_ tag: String, forKey key: String) -> (hard: String, soft: String) {
        let name = tag == sharedTierEverythingTag ? Self.everythingCopy(RedisClusterSlot.slot(of: key) % Self.everythingCopies) : tag
        return (prefix + ":{" + name + "}:t", prefix + ":{" + name + "}:st")
    }

    /// Every mark a purge of `tag` sets (one for a tag, every copy for purge-everything), each a
    /// slot of its own.
    func marksToSet(_ tag: String, soft: Bool) -> [String] {
        let names = tag == sharedTierEverythingTag ? (0..<Self.everythingCopies).map(Self.everythingCopy) : [tag]
        return names.map { prefix + ":{" + $0 + (soft ? "}:st" : "}:t") }
    }

    private static func everythingCopy(_ index: Int) -> String { sharedTierEverythingTag + ":" + String(index) }

    var sequence: String { prefix + ":{" + channel + "}:seq" }
    var log: String { prefix + ":{" + channel + "}:log" }
    var generation: String { prefix + ":{" + channel + "}:gen" }

    /// A `SCAN` pattern for the entries whose cache key begins with `keyPrefix`.
    func entryPattern(keyPrefix: String) -> String {
        var escaped = ""
        for character in keyPrefix {
            if "*?[]\\".contains(character) { escaped.append("\\") }
            escaped.append(character)
        }
        return prefix.replacingOccurrences(of: "*", with: "\\*") + ":{" + escaped + "*}:e"
    }

    /// The cache key of an entry's name (what `entry` made it from), nil for another name.
    func cacheKey(ofEntry name: String) -> String? {
        let head = prefix + ":{"
        guard name.hasPrefix(head), name.hasSuffix("}:e"), name.count >= head.count + 3 else { return nil }
        return String(name.dropFirst(head.count).dropLast(3))
    }
}
