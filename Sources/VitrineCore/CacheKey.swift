/// The primary key of a cached response: the case-folded host and the request target.
///
/// GET and HEAD share a key (a HEAD is answered from a cached GET). The shard hash is
/// computed once, when the key is made, so a lookup hashes the key's bytes only once more
/// (for the shard's dictionary).
public struct CacheKey: Hashable, Sendable, CustomStringConvertible {
    /// `host` + the request target, e.g. `shop.example/catalog/products/42`.
    public let value: String
    /// FNV-1a of `value`: picks the shard.
    public let shardHash: UInt64

    public init(host: String, target: Substring) {
        var value = host.lowercased()
        value += target
        self.init(value)
    }

    public init(host: String, target: String) {
        self.init(host: host, target: target[...])
    }

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
