import NIOCore
import NIOSSL

/// The Redis a shared tier runs on: one server, or a cluster. Commands name the key whose slot
/// they go to; on a single server that key only documents what a cluster would do with it.
public enum RedisBackend: Sendable {
    case single(RedisClient)
    case cluster(RedisClusterClient)

    /// Sends a command whose keys all share the slot of `key`.
    @inlinable
    public func send(_ arguments: [RESPArgument], key: String, on loop: any EventLoop) -> EventLoopFuture<RESPValue> {
        send(arguments, key: key[...], on: loop)
    }

    /// Sends a command whose keys all share the slot of `key`.
    @inlinable
    public func send(_ arguments: [RESPArgument], key: Substring, on loop: any EventLoop) -> EventLoopFuture<RESPValue> {
        switch self {
        case .single(let client): client.send(arguments, on: loop)
        case .cluster(let client): client.send(arguments, key: key, on: loop)
        }
    }

    /// Sends a command whose keys all hash to `slot` (`RedisClusterSlot`; a single server has
    /// one).
    @inlinable
    public func send(_ arguments: [RESPArgument], slot: Int, on loop: any EventLoop) -> EventLoopFuture<RESPValue> {
        switch self {
        case .single(let client): client.send(arguments, on: loop)
        case .cluster(let client): client.send(arguments, slot: slot, on: loop)
        }
    }

    /// `send(_:slot:on:)`, handing the reply to `done` rather than to a future of its own (on a
    /// cluster, a command to a connected primary then makes no future but its reply's).
    @inlinable
    public func send(
        _ arguments: [RESPArgument], slot: Int, on loop: any EventLoop,
        then done: @escaping @Sendable (Result<RESPValue, any Error>) -> Void
    ) {
        switch self {
        case .single(let client): client.send(arguments, on: loop).whenComplete(done)
        case .cluster(let client): client.send(arguments, slot: slot, on: loop, then: done)
        }
    }

    public var isCluster: Bool {
        if case .cluster = self { return true }
        return false
    }

    /// The single server's URL (a cluster's nodes are found from its map).
    public var singleURL: RedisURL {
        switch self {
        case .single(let client): client.url
        case .cluster: RedisURL()
        }
    }

    public var clusterClient: RedisClusterClient? {
        if case .cluster(let client) = self { return client }
        return nil
    }

    /// The TLS context connections are made with (nil: plain).
    public var tlsContext: NIOSSLContext? {
        switch self {
        case .single(let client): client.tls
        case .cluster(let client): client.tlsContext
        }
    }

    /// The command that fans a message out to every subscriber: sharded pub/sub on a cluster
    /// (a message then crosses only its shard, not the whole cluster bus).
    public var publishCommand: String { isCluster ? "SPUBLISH" : "PUBLISH" }

    /// "up" or "down" (a cluster also "degraded": some primaries do not answer).
    public var state: String {
        switch self {
        case .single(let client): client.state.rawValue
        case .cluster(let client): client.state
        }
    }

    /// The shards (empty for a single server).
    public var shards: [RedisShardStatus] {
        switch self {
        case .single: []
        case .cluster(let client): client.shardStatus
        }
    }

    /// Connects ahead of the first command; a cluster also learns its map and refreshes it every
    /// `refreshInterval` (a failover nothing has tripped over yet is noticed within it).
    public func warmUp(refreshInterval: TimeAmount = .seconds(5), on loop: any EventLoop) {
        switch self {
        case .single(let client):
            client.warmUp()
        case .cluster(let client):
            _ = client.refresh(on: loop)
            client.refreshPeriodically(every: refreshInterval)
        }
    }

    public func shutdown() async {
        switch self {
        case .single(let client): await client.shutdown()
        case .cluster(let client): await client.shutdown()
        }
    }

    /// The keys matching `pattern` on every primary, handed to `batch` a `SCAN` page at a time.
    /// Best effort: a node that fails ends its own scan.
    public func scan(matching pattern: String, on loop: any EventLoop, batch: @escaping @Sendable ([String]) -> Void) {
        switch self {
        case .single(let client):
            Self.scan(pattern: pattern, cursor: "0", send: { client.send($0, on: loop) }, batch: batch)
        case .cluster(let client):
            client.primaries(on: loop).whenSuccess { primaries in
                for primary in primaries {
                    Self.scan(pattern: pattern, cursor: "0", send: { client.send($0, to: primary, on: loop) }, batch: batch)
                }
            }
        }
    }

    private static func scan(
        pattern: String, cursor: String, send: @escaping @Sendable ([RESPArgument]) -> EventLoopFuture<RESPValue>,
        batch: @escaping @Sendable ([String]) -> Void
    ) {
        send(["SCAN", .string(cursor), "MATCH", .string(pattern), "COUNT", "1000"]).whenSuccess { reply in
            guard let parts = reply.array, parts.count == 2, let next = parts[0].string, let keys = parts[1].array else { return }
            let names = keys.compactMap(\.string)
            if !names.isEmpty { batch(names) }
            if next != "0" { scan(pattern: pattern, cursor: next, send: send, batch: batch) }
        }
    }
}
