import Logging
import NIOCore
import NIOSSL
import Synchronization

/// One shard of a cluster as the client sees it (for `/stats` and `/metrics`).
public struct RedisShardStatus: Sendable, Equatable {
    public var primary: RedisClusterTopology.Endpoint
    public var replicas: [RedisClusterTopology.Endpoint]
    /// How many slots it serves.
    public var slots: Int
    /// False while commands to its primary fail without a reply.
    public var up: Bool
    /// Commands to its primary that failed without a reply, since the client started.
    public var failures: Int
    public var lastError: String?
}

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
    /// Nodes whose last command failed without a reply (unreachable, closed, timed out).
    private let health = Mutex<[Endpoint: NodeHealth]>([:])
    /// How many nodes `health` says are down: the success path reads only this.
    private let nodesDown = Atomic<Int>(0)
    /// When the map was last asked for after a failure (uptime nanoseconds): failures under load
    /// ask for it at most every 100 ms.
    private let lastFailureRefresh = Atomic<UInt64>(0)

    private struct NodeHealth {
        var down = false
        var failures = 0
        var lastError = ""
        /// Timeouts in the current second (from `timeoutWindowStart`, uptime nanoseconds).
        var recentTimeouts = 0
        var timeoutWindowStart: UInt64 = 0
    }

    /// Timeouts within a second that mark a node down: one slow answer on a loaded machine does
    /// not; a node that stopped answering does, as soon as a refused or closed connection would.
    static let timeoutsToMarkDown = 3

    /// One event loop's open connections, touched on that loop only: a command sent from its
    /// loop to a node it is connected to takes no lock and makes no future but its reply's.
    private final class LoopConnections: @unchecked Sendable {
        var open: [Endpoint: RedisConnection] = [:]
    }

    private let loopConnections: [ObjectIdentifier: LoopConnections]

    private struct ConnectionKey: Hashable {
        let loop: ObjectIdentifier
        let endpoint: Endpoint
    }

    public init(
        seeds: [Endpoint], template: RedisURL = RedisURL(), tls: NIOSSLContext? = nil, group: any EventLoopGroup,
        logger: Logger = Logger(label: "vitrine.redis-cluster"), commandTimeout: TimeAmount = .milliseconds(250)
    ) {
        self.seeds = seeds
        self.template = template
        self.tls = tls
        self.group = group
        self.logger = logger
        self.commandTimeout = commandTimeout
        var loopConnections: [ObjectIdentifier: LoopConnections] = [:]
        for loop in group.makeIterator() { loopConnections[ObjectIdentifier(loop)] = LoopConnections() }
        self.loopConnections = loopConnections
    }

    /// The map as last learnt (nil before the first refresh).
    public var topology: RedisClusterTopology? { map.withLock { $0 } }

    // MARK: Commands

    /// Sends a command whose keys all hash to the slot of `key`, from `loop`.
    public func send(_ arguments: [RESPArgument], key: String, on loop: any EventLoop) -> EventLoopFuture<RESPValue> {
        send(arguments, key: key[...], on: loop)
    }

    /// Sends a command whose keys all hash to the slot of `key`, from `loop`.
    public func send(_ arguments: [RESPArgument], key: Substring, on loop: any EventLoop) -> EventLoopFuture<RESPValue> {
        send(arguments, slot: RedisClusterSlot.slot(of: key), on: loop)
    }

    /// Sends a command whose keys all hash to `slot`, from `loop`.
    public func send(_ arguments: [RESPArgument], slot: Int, on loop: any EventLoop) -> EventLoopFuture<RESPValue> {
        // The common case, a map known: straight to the slot's primary, no future to wait on.
        if let primary = map.withLock({ $0?.shard(forSlot: slot)?.primary }) {
            return send(arguments, to: primary, asking: false, redirects: 0, on: loop)
        }
        return currentTopology(on: loop).flatMap { topology in
            guard let primary = topology.shard(forSlot: slot)?.primary else {
                return loop.makeFailedFuture(RedisError.server("CLUSTERDOWN no node serves slot \(slot)"))
            }
            return self.send(arguments, to: primary, asking: false, redirects: 0, on: loop)
        }
    }

    /// `send(_:slot:on:)`, handing the reply to `done` (on `loop`) rather than to a future: a
    /// command sent from its loop to a primary it is connected to makes no future but its reply's
    /// (this is every L2 lookup's path). Redirects and failures are handled as `send` does.
    public func send(
        _ arguments: [RESPArgument], slot: Int, on loop: any EventLoop,
        then done: @escaping @Sendable (Result<RESPValue, any Error>) -> Void
    ) {
        guard let primary = map.withLock({ $0?.shard(forSlot: slot)?.primary }), let open = openConnection(to: primary, from: loop) else {
            send(arguments, slot: slot, on: loop).whenComplete(done)
            return
        }
        open.send(arguments, timeout: commandTimeout).whenComplete { result in
            switch result {
            case .success:
                if self.nodesDown.load(ordering: .relaxed) > 0 { self.markUp(primary) }
                done(result)
            case .failure(let error):
                self.recover(from: error, sending: arguments, to: primary, asking: false, redirects: 0, on: loop).whenComplete(done)
            }
        }
    }

    /// Sends a command to one node (a `SCAN` of its keys, say), following no redirect.
    public func send(_ arguments: [RESPArgument], to endpoint: Endpoint, on loop: any EventLoop) -> EventLoopFuture<RESPValue> {
        send(arguments, to: endpoint, asking: false, redirects: RedisClusterRouting.maxRedirects, on: loop)
    }

    /// The primaries of the map (asked for when none is known yet).
    public func primaries(on loop: any EventLoop) -> EventLoopFuture<[Endpoint]> {
        currentTopology(on: loop).map { $0.shards.map(\.primary) }
    }

    private func send(
        _ arguments: [RESPArgument], to endpoint: Endpoint, asking: Bool, redirects: Int, on loop: any EventLoop
    ) -> EventLoopFuture<RESPValue> {
        let reply: EventLoopFuture<RESPValue>
        if !asking, let open = openConnection(to: endpoint, from: loop) {
            reply = open.send(arguments, timeout: commandTimeout)
        } else {
            reply = connection(to: endpoint, on: loop).flatMap { connection in
                guard asking else { return connection.send(arguments, timeout: self.commandTimeout).hop(to: loop) }
                // ASKING, then the command, in one write: the node takes the command for a slot it is importing.
                return connection.pipeline([["ASKING"], arguments], timeout: self.commandTimeout).hop(to: loop).flatMapThrowing { replies in
                    guard let last = replies.last else { throw RedisError.protocolError("no reply after ASKING") }
                    if case .error(let message) = last { throw RedisError.server(message) }
                    return last
                }
            }
        }
        if nodesDown.load(ordering: .relaxed) > 0 { reply.whenSuccess { _ in self.markUp(endpoint) } }
        return reply.flatMapError { error in
            self.recover(from: error, sending: arguments, to: endpoint, asking: asking, redirects: redirects, on: loop)
        }
    }

    /// The common case: `loop`'s open connection to `endpoint`, when called on `loop` (no lock,
    /// no future); nil otherwise.
    private func openConnection(to endpoint: Endpoint, from loop: any EventLoop) -> RedisConnection? {
        guard loop.inEventLoop, let open = loopConnections[ObjectIdentifier(loop)]?.open[endpoint], open.isActive else { return nil }
        return open
    }

    /// What a command that failed on `endpoint` comes to: a redirect followed (`MOVED`, `ASK`,
    /// `TRYAGAIN`), or the failure, the node marked down and the map asked for again when it
    /// did not answer.
    private func recover(
        from error: any Error, sending arguments: [RESPArgument], to endpoint: Endpoint, asking: Bool, redirects: Int, on loop: any EventLoop
    ) -> EventLoopFuture<RESPValue> {
        let message: String? = if case RedisError.server(let text) = error { text } else { nil }
        switch RedisClusterRouting.decide(errorReply: message, answeredBy: endpoint, redirects: redirects) {
        case .done, .giveUp:
            if message == nil {
                // The node is unreachable, closed or slow: what the cluster says now may differ
                // (a failover). A timed-out command keeps its connection (its reply, when it
                // comes, is dropped in order); any other failure drops it.
                markDown(endpoint, error: error)
                if (error as? RedisError) != .timeout { forget(endpoint, on: loop) }
                refreshAfterFailure(on: loop)
            }
            return loop.makeFailedFuture(error)
        case .retry(let target, let asking, let refreshMap):
            if refreshMap { _ = refresh(on: loop) }
            return send(arguments, to: target, asking: asking, redirects: redirects + 1, on: loop)
        case .retryLater(let target):
            return loop.scheduleTask(in: .milliseconds(10)) {}.futureResult.flatMap {
                self.send(arguments, to: target, asking: asking, redirects: redirects + 1, on: loop)
            }
        }
    }

    // MARK: Health

    private func markDown(_ endpoint: Endpoint, error: any Error) {
        let now = UInt64(NIODeadline.now().uptimeNanoseconds)
        let wentDown = health.withLock { health -> Bool in
            var node = health[endpoint] ?? NodeHealth()
            let wasDown = node.down
            node.failures += 1
            node.lastError = "\(error)"
            if case RedisError.timeout = error {
                if now &- node.timeoutWindowStart > 1_000_000_000 {
                    node.timeoutWindowStart = now
                    node.recentTimeouts = 0
                }
                node.recentTimeouts += 1
                if node.recentTimeouts >= Self.timeoutsToMarkDown { node.down = true }
            } else {
                node.down = true
            }
            health[endpoint] = node
            return node.down && !wasDown
        }
        if wentDown {
            nodesDown.wrappingAdd(1, ordering: .relaxed)
            logger.warning("redis cluster node unreachable", metadata: ["node": "\(endpoint)", "error": "\(error)"])
        }
    }

    private func markUp(_ endpoint: Endpoint) {
        let cameBack = health.withLock { health -> Bool in
            guard health[endpoint]?.down == true else { return false }
            health[endpoint]?.down = false
            return true
        }
        if cameBack {
            nodesDown.wrappingSubtract(1, ordering: .relaxed)
            logger.notice("redis cluster node answers again", metadata: ["node": "\(endpoint)"])
        }
    }

    /// Nodes gone from the map (a failed primary replaced) are no longer counted as down.
    private func forgetHealth(outside topology: RedisClusterTopology) {
        let members = Set(topology.shards.flatMap { [$0.primary] + $0.replicas })
        let removedDown = health.withLock { health -> Int in
            let gone = health.keys.filter { !members.contains($0) }
            var removed = 0
            for endpoint in gone where health.removeValue(forKey: endpoint)?.down == true { removed += 1 }
            return removed
        }
        if removedDown > 0 { nodesDown.wrappingSubtract(removedDown, ordering: .relaxed) }
    }

    /// After a failure, the map may have changed (a failover): asked for again, at most every 100 ms.
    private func refreshAfterFailure(on loop: any EventLoop) {
        let now = UInt64(NIODeadline.now().uptimeNanoseconds)
        let last = lastFailureRefresh.load(ordering: .relaxed)
        guard now &- last >= 100_000_000,
            lastFailureRefresh.compareExchange(expected: last, desired: now, ordering: .relaxed).exchanged
        else { return }
        _ = refresh(on: loop)
    }

    /// "up" (a map, every primary in it answering), "degraded" (some primaries do not) or "down"
    /// (no map, or no primary answering).
    public var state: String {
        guard let topology else { return "down" }
        let down = health.withLock { health in topology.shards.filter { health[$0.primary]?.down == true }.count }
        if down == 0 { return "up" }
        return down < topology.shards.count ? "degraded" : "down"
    }

    /// Each shard of the map, as this client sees it.
    public var shardStatus: [RedisShardStatus] {
        guard let topology else { return [] }
        let health = self.health.withLock { $0 }
        return topology.shards.map { shard in
            let node = health[shard.primary]
            return RedisShardStatus(
                primary: shard.primary, replicas: shard.replicas, slots: shard.slots.reduce(0) { $0 + $1.count },
                up: node?.down != true, failures: node?.failures ?? 0, lastError: node?.lastError)
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
                let changed = self.map.withLock { map -> Bool in
                    defer { map = topology }
                    return map != nil && map != topology
                }
                if changed { self.forgetHealth(outside: topology) }
                if changed { self.logger.notice("redis cluster map changed", metadata: ["shards": "\(topology.shards.map(\.primary))"]) }
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

    /// A node's URL: its address, with the credentials and TLS of the template.
    public func url(of endpoint: Endpoint) -> RedisURL {
        var url = template
        url.host = endpoint.host
        url.port = endpoint.port
        return url
    }

    /// The TLS context every node is reached with (nil: plain).
    public var tlsContext: NIOSSLContext? { tls }

    private func connection(to endpoint: Endpoint, on loop: any EventLoop) -> EventLoopFuture<RedisConnection> {
        let key = ConnectionKey(loop: ObjectIdentifier(loop), endpoint: endpoint)
        let (tls, timeout, nodeURL) = (self.tls, commandTimeout, url(of: endpoint))
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
            if connection.eventLoop === loop { self.loopConnections[ObjectIdentifier(loop)]?.open[endpoint] = connection }
            return loop.makeSucceededFuture(connection)
        }
        .flatMapError { (error: any Error) -> EventLoopFuture<RedisConnection> in
            self.forget(endpoint, on: loop)
            return loop.makeFailedFuture(error)
        }
    }

    private func forget(_ endpoint: Endpoint, on loop: any EventLoop) {
        _ = connections.withLock { $0.removeValue(forKey: ConnectionKey(loop: ObjectIdentifier(loop), endpoint: endpoint)) }
        if loop.inEventLoop { loopConnections[ObjectIdentifier(loop)]?.open[endpoint] = nil }
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
