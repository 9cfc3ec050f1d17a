import VitrineCore

/// What to purge: the body of `POST /purge`, and what writes and (later) the change feed produce.
public struct PurgeRequest: Sendable, Equatable, Decodable {
    public var tags: [String]
    /// Request targets (`/catalog/products/42`) or absolute URLs (the scheme and host are dropped).
    public var keys: [String]
    /// Path prefixes.
    public var prefixes: [String]
    /// Mark stale instead of removing.
    public var soft: Bool
    /// Everything cached, on every node and in L2 (as when purges were lost).
    public var everything: Bool

    public init(tags: [String] = [], keys: [String] = [], prefixes: [String] = [], soft: Bool = false, everything: Bool = false) {
        self.tags = tags
        self.keys = keys
        self.prefixes = prefixes
        self.soft = soft
        self.everything = everything
    }

    enum CodingKeys: String, CodingKey { case tags, keys, prefixes, soft, everything }

    public init(from decoder: any Decoder) throws {
        let container = try decoder.container(keyedBy: CodingKeys.self)
        tags = try container.decodeIfPresent([String].self, forKey: .tags) ?? []
        keys = try container.decodeIfPresent([String].self, forKey: .keys) ?? []
        prefixes = try container.decodeIfPresent([String].self, forKey: .prefixes) ?? []
        soft = try container.decodeIfPresent(Bool.self, forKey: .soft) ?? false
        everything = try container.decodeIfPresent(Bool.self, forKey: .everything) ?? false
    }

    public var isEmpty: Bool { tags.isEmpty && keys.isEmpty && prefixes.isEmpty && !everything }
}

/// What a purge matched.
public struct PurgeResult: Sendable, Equatable {
    /// Entries matched: keys and prefixes removed, plus entries that carried a purged tag.
    public var purged = 0
    public var tags = 0
    public var keys = 0
    public var prefixes = 0
}

/// As the purge is published to the fleet (`FanoutMessage`).
extension PurgeRequest: Encodable {
    public func encode(to encoder: any Encoder) throws {
        var container = encoder.container(keyedBy: CodingKeys.self)
        try container.encode(tags, forKey: .tags)
        try container.encode(keys, forKey: .keys)
        try container.encode(prefixes, forKey: .prefixes)
        try container.encode(soft, forKey: .soft)
        if everything { try container.encode(everything, forKey: .everything) }
    }
}
