import NIOCore

/// A Redis Cluster's map: which primary (and replicas) serves each of the 16,384 slots, as
/// `CLUSTER SLOTS` tells it. Built from a reply, so checked throughout: a malformed reply is an
/// error, never a trap.
public struct RedisClusterTopology: Sendable, Equatable {
    /// A node's address, as the cluster announces it.
    public struct Endpoint: Sendable, Hashable, CustomStringConvertible {
        public let host: String
        public let port: Int
        public init(host: String, port: Int) {
            self.host = host
            self.port = port
        }
        public var description: String { host.contains(":") ? "[\(host)]:\(port)" : "\(host):\(port)" }
    }

    /// One primary, its replicas, and the slots they serve.
    public struct Shard: Sendable, Equatable {
        public var primary: Endpoint
        public var replicas: [Endpoint]
        public var slots: [ClosedRange<Int>]
    }

    public enum ParseError: Error, Equatable {
        case malformed(String)
    }

    /// The shards, primaries sorted by address (so that two equal maps compare equal).
    public let shards: [Shard]
    /// Slot → index in `shards` (`-1`: no shard serves it).
    private let owners: [Int16]

    /// The shard serving `slot`, nil when none does (the cluster is incomplete).
    public func shard(forSlot slot: Int) -> Shard? {
        guard slot >= 0, slot < owners.count else { return nil }
        let owner = Int(owners[slot])
        return owner >= 0 ? shards[owner] : nil
    }

    /// Slots no shard serves.
    public var uncoveredSlots: Int { owners.reduce(0) { $0 + ($1 < 0 ? 1 : 0) } }

    public init(shards unsorted: [Shard]) {
        var merged: [Endpoint: Shard] = [:]
        for shard in unsorted {
            if var existing = merged[shard.primary] {
                existing.slots += shard.slots
                for replica in shard.replicas where !existing.replicas.contains(replica) { existing.replicas.append(replica) }
                merged[shard.primary] = existing
            } else {
                merged[shard.primary] = shard
            }
        }
        let shards = merged.values
            .map { shard -> Shard in
                var shard = shard
                shard.slots.sort { $0.lowerBound < $1.lowerBound }
                shard.replicas.sort { $0.description < $1.description }
                return shard
            }
            .sorted { $0.primary.description < $1.primary.description }
        var owners = [Int16](repeating: -1, count: RedisClusterSlot.count)
        for (index, shard) in shards.enumerated() {
            for range in shard.slots {
                for slot in range where slot >= 0 && slot < RedisClusterSlot.count { owners[slot] = Int16(index) }
            }
        }
        self.shards = shards
        self.owners = owners
    }

    /// From a `CLUSTER SLOTS` reply. `answeredBy` stands in for a node announced without a host
    /// (an empty string or `?`: the node that answered is meant).
    public init(clusterSlots reply: RESPValue, answeredBy: Endpoint) throws {
        guard let entries = reply.array else { throw ParseError.malformed("CLUSTER SLOTS is not an array") }
        var shards: [Shard] = []
        for entry in entries {
            guard let fields = entry.array, fields.count >= 3,
                let first = fields[0].integer, let last = fields[1].integer,
                first >= 0, last >= first, last < RedisClusterSlot.count
            else { throw ParseError.malformed("a slot range is not [start, end, primary, replicas...]") }
            let primary = try Self.endpoint(fields[2], answeredBy: answeredBy)
            let replicas = try fields.dropFirst(3).map { try Self.endpoint($0, answeredBy: answeredBy) }
            shards.append(Shard(primary: primary, replicas: replicas, slots: [Int(first)...Int(last)]))
        }
        self.init(shards: shards)
    }

    private static func endpoint(_ value: RESPValue, answeredBy: Endpoint) throws -> Endpoint {
        guard let fields = value.array, fields.count >= 2, let host = fields[0].string, let port = fields[1].integer,
            port > 0, port <= 65_535, host.utf8.count <= 255
        else { throw ParseError.malformed("a node is not [host, port, ...]") }
        if host.isEmpty || host == "?" { return Endpoint(host: answeredBy.host, port: Int(port)) }
        return Endpoint(host: host, port: Int(port))
    }
}
