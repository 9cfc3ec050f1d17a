import Logging
import NIOCore
import NIOSSL
import Synchronization

/// A Redis Cluster client: learns the map from `CLUSTER SLOTS` (any seed or known node), sends
/// each command to the primary of its key's slot over one pipelined connection per node per event
/// loop, follows `MOVED` (refreshing the map) and `ASK` (with `ASKING`), and refreshes the map on
/// a timer and after a node fails. AUTH and TLS as the template URL has them.
public final class RedisClusterClient: Sendable {
    public typealias Endpoint = RedisClusterTopology.Endpoint

    private let seeds: [Endpoint]
    /// Credentials, database and TLS for every node (its host and port are replaced).
    private let template: RedisURL
    private let tls: NIOSSLContext?
    private let group: any EventLoopGroup
    private let logger: Logger
    private let commandTimeout: TimeAmount
    private let map = Mutex<RedisClusterTopology?>(nil)
    private let refreshing = Mutex<EventLoopFuture<RedisClusterTopology>?>(nil)
    private let connections = Mutex<[ConnectionKey: EventLoopFuture<RedisConnection>]>([:])
    private let periodic = Mutex<RepeatedTask?>(nil)

    private struct ConnectionKey: Hashable {
        let loop: ObjectIdentifier
        let endpoint: Endpoint
    }

    public init(
        seeds: [Endpoint], template: RedisURL = RedisURL(), tls: NIOSSLContext? = nil, group: any EventLoopGroup,
        logger: Logger = Logger(label: "vitrine.redis-cluster"), commandTimeout: TimeAmount = .seconds(1)
    ) {
        self.seeds = seeds
        self.template = template
        self.tls = tls
        self.group = group
        self.logger = logger
        self.commandTimeout = commandTimeout
    }

    /// The map as last learnt (nil before the first refresh).
    public var topology: RedisClusterTopology? { map.withLock { $0 } }

    // MARK: Commands

    /// Sends a command whose keys all hash to the slot of `key`, from `loop`.
    public func send(_ arguments: [RESPArgument], key: String, on loop: any EventLoop) -> EventLoopFuture<RESPValue> {
        let slot = RedisClusterSlot.slot(of: key)
        return currentTopology(on: loop).flatMap { topology in
            guard let primary = topology.shard(forSlot: slot)?.primary else {
                return loop.makeFailedFuture(RedisError.server("CLUSTERDOWN no node serves slot \(slot)"))
            }
            return self.send(arguments, to: primary, asking: false, redirects: 0, on: loop)
        }
    }

    private func send(
        _ arguments: [RESPArgument], to endpoint: Endpoint, asking: Bool, redirects: Int, on loop: any EventLoop
    ) -> EventLoopFuture<RESPValue> {
        let reply: EventLoopFuture<RESPValue> = connection(to: endpoint, on: loop).flatMap { connection in
            guard asking else { return connection.send(arguments, timeout: self.commandTimeout).hop(to: loop) }
            // ASKING, then the command, in one write: the node takes the command for a slot it is importing.
            return connection.pipeline([["ASKING"], arguments], timeout: self.commandTimeout).hop(to: loop).flatMapThrowing { replies in
                guard let last = replies.last else { throw RedisError.protocolError("no reply after ASKING") }
                if case .error(let message) = last { throw RedisError.server(message) }
                return last
            }
        }
        return reply.flatMapError { error in
            let message: String? = if case RedisError.server(let text) = error { text } else { nil }
            switch RedisClusterRouting.decide(errorReply: message, answeredBy: endpoint, redirects: redirects) {
            case .done, .giveUp:
                if message == nil {
                    // The node is unreachable or closed: what the cluster says now may differ (a failover).
                    self.forget(endpoint, on: loop)
                    _ = self.refresh(on: loop)
                }
                return loop.makeFailedFuture(error)
            case .retry(let target, let asking, let refreshMap):
                if refreshMap { _ = self.refresh(on: loop) }
                return self.send(arguments, to: target, asking: asking, redirects: redirects + 1, on: loop)
            }
        }
    }

    // MARK: The map

    private func currentTopology(on loop: any EventLoop) -> EventLoopFuture<RedisClusterTopology> {
        if let known = map.withLock({ $0 }) { return loop.makeSucceededFuture(known) }
        return refresh(on: loop)
    }

    /// Asks the known nodes (primaries first, then the seeds) for `CLUSTER SLOTS`, the first
    /// that answers wins. One refresh at a time: callers during one share it.
    @discardableResult
    public func refresh(on loop: any EventLoop) -> EventLoopFuture<RedisClusterTopology> {
        let (future, promise) = refreshing.withLock {
            current -> (EventLoopFuture<RedisClusterTopology>, EventLoopPromise<RedisClusterTopology>?) in
            if let current { return (current, nil) }
            let promise = loop.makePromise(of: RedisClusterTopology.self)
            current = promise.futureResult
            return (promise.futureResult, promise)
        }
        guard let promise else { return future.hop(to: loop) }
        let known = map.withLock { $0 }.map { topology in topology.shards.flatMap { [$0.primary] + $0.replicas } } ?? []
        var candidates: [Endpoint] = []
        for endpoint in known + seeds where !candidates.contains(endpoint) { candidates.append(endpoint) }
        ask(candidates[...], on: loop).whenComplete { result in
            switch result {
            case .success(let topology):
                self.map.withLock { $0 = topology }
            case .failure(let error):
                self.logger.warning("cannot read the cluster's map", metadata: ["error": "\(error)"])
            }
            self.refreshing.withLock { $0 = nil }
            promise.completeWith(result)
        }
        return future
    }

    /// Refreshes the map every `interval` (a failover the client has not tripped over yet is
    /// noticed within it), until `shutdown`.
    public func refreshPeriodically(every interval: TimeAmount) {
        let loop = group.next()
        let task = loop.scheduleRepeatedAsyncTask(initialDelay: interval, delay: interval) { _ in
            self.refresh(on: loop).map { _ in }.recover { _ in }
        }
        periodic.withLock { $0 = task }
    }

    private func ask(_ candidates: ArraySlice<Endpoint>, on loop: any EventLoop) -> EventLoopFuture<RedisClusterTopology> {
        guard let endpoint = candidates.first else {
            return loop.makeFailedFuture(RedisError.connectionClosed)
        }
        return connection(to: endpoint, on: loop)
            .flatMap { $0.send(["CLUSTER", "SLOTS"], timeout: self.commandTimeout).hop(to: loop) }
            .flatMapThrowing { try RedisClusterTopology(clusterSlots: $0, answeredBy: endpoint) }
            .flatMapError { _ in self.ask(candidates.dropFirst(), on: loop) }
    }

    // MARK: Connections

    private func connection(to endpoint: Endpoint, on loop: any EventLoop) -> EventLoopFuture<RedisConnection> {
        let key = ConnectionKey(loop: ObjectIdentifier(loop), endpoint: endpoint)
        var url = template
        url.host = endpoint.host
        url.port = endpoint.port
        let (tls, timeout, nodeURL) = (self.tls, commandTimeout, url)
        let pooled = connections.withLock { connections -> EventLoopFuture<RedisConnection> in
            if let existing = connections[key] { return existing }
            let made = RedisConnection.connectFuture(to: nodeURL, on: loop, commandTimeout: timeout, tls: tls)
            connections[key] = made
            return made
        }
        return pooled.hop(to: loop).flatMap { (connection: RedisConnection) -> EventLoopFuture<RedisConnection> in
            guard connection.isActive else {
                // Closed since: the next command connects anew.
                self.forget(endpoint, on: loop)
                return loop.makeFailedFuture(RedisError.connectionClosed)
            }
            return loop.makeSucceededFuture(connection)
        }
        .flatMapError { (error: any Error) -> EventLoopFuture<RedisConnection> in
            self.forget(endpoint, on: loop)
            return loop.makeFailedFuture(error)
        }
    }

    private func forget(_ endpoint: Endpoint, on loop: any EventLoop) {
        _ = connections.withLock { $0.removeValue(forKey: ConnectionKey(loop: ObjectIdentifier(loop), endpoint: endpoint)) }
    }

    /// Closes every connection.
    public func shutdown() async {
        periodic.withLock { task in
            task?.cancel()
            task = nil
        }
        let open = connections.withLock { connections in
            defer { connections.removeAll() }
            return Array(connections.values)
        }
        for future in open { if let connection = try? await future.get() { await connection.close() } }
    }
}
