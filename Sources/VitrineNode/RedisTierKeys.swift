import NIOCore
import VitrineCore
import VitrineProxy
import VitrineRedis

/// Where the shared tier keeps things in Redis, laid out so that no command or script needs keys
/// from two cluster slots, and a lookup needs as few slots as it can:
///
/// - an entry's keys share the slot of its primary key (`P:{PRIMARY}VARIANT:e` the entry, `:m`
///   its metadata, `:l` its fetch lease, `:s` its soft-purge mark), and so do that primary key's
///   purge marks (`P:{PRIMARY}:kt` hard, `:kst` soft): a key purge, of every variant, is read in
///   the entry's own slot;
/// - purge-everything's marks are kept in one copy per slot (`P:{TAG}:at`, `:ast`, `TAG` a string
///   that hashes to the slot, `#all:` and three characters): a purge of everything writes all 16,384, a lookup reads its own
///   slot's, in the lookup script;
/// - a tag's purge marks share the slot of the tag (`P:{TAG}:t` hard, `P:{TAG}:st` soft): read
///   by the node, one `MGET` per tag, on a cluster; by the lookup script on a single server;
/// - what the fleet shares (`P:{CHANNEL}:seq` the purge sequence, `:log` the purge log, `:gen`
///   its generation) shares the slot of the fan-out channel, so that one script can log a purge
///   and publish it (sharded pub/sub sends a message from the channel's slot).
///
/// Every name ends in a suffix of its own after a `}` or a variant, so no two kinds can collide
/// whatever a key or tag holds.
struct RedisTierKeys: Sendable {
    /// `P`: one fleet's keys, so that fleets (or tests) can share a Redis.
    let prefix: String
    let channel: String

    /// What the fleet shares, in the channel's slot (see above).
    let sequence: String
    let log: String
    let generation: String

    init(prefix: String, channel: String) {
        self.prefix = prefix
        self.channel = channel
        self.sequence = prefix + ":{" + channel + "}:seq"
        self.log = prefix + ":{" + channel + "}:log"
        self.generation = prefix + ":{" + channel + "}:gen"
    }

    /// The names of one entry and of the marks its lookup reads in its slot.
    struct Entry {
        let entry: String
        let meta: String
        let lease: String
        let softMark: String
        let keyMarks: (hard: String, soft: String)
        let everythingMarks: (hard: String, soft: String)
    }

    func entry(_ key: CacheKey) -> Entry {
        let names = lookupNames(key).names.map { String(buffer: $0) }
        return Entry(
            entry: names[0], meta: names[1], lease: names[2], softMark: names[3], keyMarks: (names[4], names[5]),
            everythingMarks: (names[6], names[7]))
    }

    /// The names of `entry(key)`, in the order the lookup script takes them, and the slot they
    /// share.
    struct LookupNames {
        /// Slices of one buffer.
        let names: [ByteBuffer]
        let slot: Int
    }

    /// The names of `entry(key)` written into one buffer (`HeadWriter`, room reserved once for
    /// their exact length), as slices of it: one allocation where eight strings would cost
    /// eight, and neither string appends nor UTF-8 validation (a lookup is on every L2 hit's
    /// path). The slot is read from the first name once it is written.
    func lookupNames(_ key: CacheKey) -> LookupNames {
        var primary = sharedTierPrimary(of: key)
        var variant = key.value[primary.endIndex...]
        // "P:{" + tag + "}" + variant + suffix: six names of the entry's, then two of its slot's.
        let opening = prefix.utf8.count + 2
        let entryHead = opening + primary.utf8.count + 1
        var buffer = ByteBufferAllocator().buffer(
            capacity: 4 * (entryHead + variant.utf8.count + 2) + 2 * entryHead + 7 + 2 * (opening + Self.slotTagLength + 1) + 7)
        var ends: [Int] = []
        ends.reserveCapacity(8)
        let prefix = self.prefix
        func name(_ writer: inout HeadWriter, _ tag: UnsafeRawBufferPointer, _ variant: UnsafeRawBufferPointer?, _ suffix: StaticString) {
            writer.put(prefix)
            writer.put(":{")
            writer.put(tag)
            writer.put("}")
            if let variant { writer.put(variant) }
            writer.put(suffix)
        }
        primary.withUTF8 { primary in
            variant.withUTF8 { variant in
                for suffix: StaticString in [":e", ":m", ":l", ":s", ":kt", ":kst"] {
                    // The entry's own four carry the variant; its primary key's marks do not.
                    let stem = suffix.utf8CodeUnitCount == 2 ? UnsafeRawBufferPointer(variant) : nil
                    buffer.writeHead(capacity: entryHead + variant.count + 4) { name(&$0, UnsafeRawBufferPointer(primary), stem, suffix) }
                    ends.append(buffer.writerIndex)
                }
            }
        }
        // Purge-everything's marks in the entry's slot (the first name's).
        let slot = buffer.withUnsafeReadableBytes { RedisClusterSlot.slot(ofBytes: UnsafeBufferPointer(rebasing: $0.assumingMemoryBound(to: UInt8.self)[..<ends[0]])) }
        var everything = Self.slotTags[slot]
        everything.withUTF8 { everything in
            for suffix: StaticString in [":at", ":ast"] {
                buffer.writeHead(capacity: opening + everything.count + 5) { name(&$0, UnsafeRawBufferPointer(everything), nil, suffix) }
                ends.append(buffer.writerIndex)
            }
        }
        var names: [ByteBuffer] = []
        names.reserveCapacity(8)
        var start = 0
        for end in ends {
            names.append(buffer.getSlice(at: start, length: end - start) ?? ByteBuffer())
            start = end
        }
        return LookupNames(names: names, slot: slot)
    }

    /// The marks of a tag the lookup script does not read itself (not a key tag, not purge-everything).
    func tagMarks(_ tag: String) -> (hard: String, soft: String) {
        (prefix + ":{" + tag + "}:t", prefix + ":{" + tag + "}:st")
    }

    /// Whether the lookup script reads the marks of the tag in `bytes` in the entry's slot
    /// (purge-everything's, a key tag's); the node reads the others.
    static func isReadWithEntry(_ bytes: Slice<UnsafeRawBufferPointer>) -> Bool {
        bytes.elementsEqual(sharedTierEverythingTag.utf8) || bytes.starts(with: sharedTierKeyTagPrefix.utf8)
    }

    /// Every mark a purge of `tag` sets: a key tag's in its primary's slot, purge-everything's in
    /// every slot, another tag's in its own.
    func marksToSet(_ tag: String, soft: Bool) -> [String] {
        if tag == sharedTierEverythingTag {
            return Self.slotTags.map { prefix + ":{" + $0 + (soft ? "}:ast" : "}:at") }
        }
        if tag.hasPrefix(sharedTierKeyTagPrefix) {
            return [prefix + ":{" + tag.dropFirst(sharedTierKeyTagPrefix.count) + (soft ? "}:kst" : "}:kt")]
        }
        return [prefix + ":{" + tag + (soft ? "}:st" : "}:t")]
    }

    /// A `SCAN` pattern for the entries whose cache key begins with `keyPrefix`.
    func entryPattern(keyPrefix: String) -> String {
        var escaped = ""
        for character in keyPrefix {
            if "*?[]\\".contains(character) { escaped.append("\\") }
            escaped.append(character)
        }
        return prefix + ":{" + escaped + "*:e"
    }

    /// The name of an entry's sibling (`:m`, `:s`) from the entry's name.
    static func sibling(ofEntry name: String, _ suffix: String) -> String? {
        guard name.hasSuffix(":e") else { return nil }
        return String(name.dropLast(2)) + suffix
    }

    /// For each slot, a short string that hashes to it (`#all:` and three characters): the hash
    /// tag of that slot's purge-everything marks.
    static let slotTags = RedisClusterSlot.tagsForEverySlot(prefix: sharedTierEverythingTag + ":")
    /// The longest of them (all are as long: `#all:` and three characters).
    static let slotTagLength = slotTags.map(\.utf8.count).max() ?? 0
}
