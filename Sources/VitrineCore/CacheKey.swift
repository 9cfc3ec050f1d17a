/// The key of a cached response: the request target as the route normalised it (see
/// `CacheKeyNormalizer`), with the case-folded host in front where the route keys on it.
///
/// GET and HEAD share a key (a HEAD is answered from a cached GET). The shard hash is
/// computed once, when the key is made, so a lookup hashes the key's bytes only once more
/// (for the shard's dictionary).
public struct CacheKey: Hashable, Sendable, CustomStringConvertible {
    /// The normalised target, e.g. `/catalog/products/42` or `shop.example/catalog/products/42`.
    public let value: String
    /// FNV-1a of `value`: picks the shard.
    public let shardHash: UInt64

    /// A key from its full text (as written by `value`).
    public init(_ value: String) {
        self.value = value
        self.shardHash = Self.fnv1a(value)
    }

    public var description: String { value }

    public static func == (lhs: CacheKey, rhs: CacheKey) -> Bool {
        lhs.shardHash == rhs.shardHash && lhs.value == rhs.value
    }

    public func hash(into hasher: inout Hasher) {
        hasher.combine(shardHash)
    }

    static func fnv1a(_ text: String) -> UInt64 {
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        for byte in text.utf8 {
            hash ^= UInt64(byte)
            hash &*= 0x0000_0100_0000_01b3
        }
        return hash
    }
}
