import Logging
import NIOCore
import NIOExtras
import NIOHTTP1
import NIOPosix
import NIOSSL
import ServiceLifecycle
import UnixSignals
import Synchronization
import Foundation
import VitrineConfig
import VitrineCore
import VitrineProxy
import VitrineFeed
import VitrineRedis

/// One Vitrine node: the proxy listener, the admin listener and everything they share.
///
/// Run it as a `Service` (it serves until graceful shutdown), or call `start()` and `stop()`
/// directly (tests do, with port 0).
public final class ProxyNode: Service, Sendable {
    /// The addresses the listeners are bound to.
    public struct Listening: Sendable {
        public let proxy: SocketAddress
        public let admin: SocketAddress
        /// The probe listener, when `probes.listen` is configured.
        public let probes: SocketAddress?
        /// The TLS listener, when `tls` is configured.
        public let tls: SocketAddress?
    }

    /// The configuration the node started with (what cannot change without a restart).
    private let configuration: VitrineConfiguration
    /// What a reload reads (the file, with the command line's overrides); nil: no reloads.
    private let loadConfiguration: (@Sendable () throws -> VitrineConfiguration)?
    /// The configuration running now, and how many have been loaded: reloads take turns here.
    private let running: Mutex<(configuration: VitrineConfiguration, generation: Int)>
    private let clock: any CacheClock
    private let group: any EventLoopGroup
    private let logger: Logger
    /// What every connection of this node shares (internal: tests reach the purge outbox through it).
    let context: ProxyContext
    /// Precomputed listing pages (they fetch through `context`; purges reach them through the
    /// invalidator); a reload that changes them puts new ones in place.
    private let listings: Reloadable<Listings>
    private let adminAPI: AdminAPI
    private let channels = Mutex<[any Channel]>([])
    /// Collects the proxy listener's connections, to tell them to finish when the node drains.
    private let quiescing: ServerQuiescingHelper
    /// The same for the TLS listener's, when there is one: a `ServerQuiescingHelper` serves one
    /// server channel (a second one given to it is ignored, and its connections never drain).
    private let quiescingTLS: ServerQuiescingHelper?
    private let redis: RedisBackend?
    private let subscriber: RedisSubscriber?
    /// Follows the fleet's purge log (with Redis).
    private let purgeLog: PurgeLogFollower?
    private let feed: ChangeFeed?
    /// The node's counters (as `GET /stats` shows them).
    var stats: ProxyStats { context.stats }
    /// The change feed's state, when one is configured.
    var feedStatus: ChangeFeed.Status? { feed?.status }
    private let feedTask = Mutex<Task<Void, Never>?>(nil)
    /// The TLS listener's certificates, when it is configured.
    private let certificates: ServerCertificates?
    /// Reads the certificate files again when they change.
    private let certificateCheck = Mutex<Task<Void, Never>?>(nil)
    /// This node's identity in purge fan-out messages.
    public let nodeID = UUID().uuidString

    /// - Throws: `ConfigError` when no admin token is configured.
    public init(
        configuration: VitrineConfiguration,
        group: any EventLoopGroup,
        logger: Logger = Logger(label: "vitrine"),
        clock: any CacheClock = SystemClock(),
        accessLogSink: (@Sendable ([UInt8]) -> Void)? = nil,
        reload loadConfiguration: (@Sendable () throws -> VitrineConfiguration)? = nil
    ) throws {
        guard let token = configuration.admin.token, !token.isEmpty else {
            throw ConfigError(key: "admin.token", "not set: set VITRINE_ADMIN_TOKEN, --admin-token or admin.token")
        }
        self.configuration = configuration
        do {
            certificates = try configuration.tls.map { try ServerCertificates($0) }
        } catch {
            throw ConfigError(key: "tls.certificates", "\(error)")
        }
        self.group = group
        self.logger = logger
        self.quiescing = ServerQuiescingHelper(group: group)
        self.quiescingTLS = configuration.tls == nil ? nil : ServerQuiescingHelper(group: group)
        self.loadConfiguration = loadConfiguration
        self.running = Mutex((configuration, 1))
        self.clock = clock
        let longestFetch = configuration.origins.values.map(\.totalTimeout).max() ?? .seconds(60)
        // `cache.memory` bounds what this process caches: without Redis, the in-process L2 gets a
        // fifth of it and L1 the rest.
        let memory = configuration.cache.memory.bytes
        let inProcessTierBudget = configuration.redis == nil ? memory / 5 : 0
        let store = ResponseStore(
            byteBudget: memory - inProcessTierBudget,
            shardCount: configuration.cache.shards,
            raceWindow: longestFetch + .seconds(5),
            clock: clock
        )
        let stats = ProxyStats()
        let metrics = ProxyMetrics()
        let router = Router(configuration: configuration, group: group)
        if let failure = router.originTLSFailures.first {
            throw ConfigError(key: "origins.\(failure.origin).ca", "no TLS client: \(failure.reason)")
        }
        let routes = Reloadable(router)
        var tier: (any SharedTier)?
        var subscriber: RedisSubscriber?
        let purgeLog: PurgeLogFollower?
        if let settings = configuration.redis {
            let backend: RedisBackend
            do {
                if settings.isCluster {
                    let url = try RedisClusterURL(parsing: settings.url)
                    backend = .cluster(
                        RedisClusterClient(
                            seeds: url.seeds, template: url.template, tls: try RedisTLS.context(for: url.template), group: group,
                            logger: logger))
                } else {
                    let url = try RedisURL(parsing: settings.url)
                    backend = .single(RedisClient(url: url, group: group, logger: logger, tls: try RedisTLS.context(for: url)))
                }
            } catch {
                throw ConfigError(key: "redis.url", "\(error)")
            }
            tier = RedisTier(backend: backend, nodeID: nodeID, channel: settings.channel, keyPrefix: settings.keyPrefix, logger: logger)
            redis = backend
        } else {
            // No Redis: an in-process L2 with the same semantics.
            tier = InProcessTier(budget: inProcessTierBudget, clock: clock)
            redis = nil
        }
        let invalidator = Invalidator(store: store, routes: routes, stats: stats, metrics: metrics, tier: tier, logger: logger)
        if let backend = redis, let redisTier = tier as? RedisTier {
            let nodeID = self.nodeID
            let follower = PurgeLogFollower(
                tier: redisTier, nodeID: nodeID, loop: group.next(), logger: logger, apply: { invalidator.applyRemote($0) },
                dropL1: { store.purgeAll() })
            purgeLog = follower
            subscriber = RedisSubscriber(
                url: backend.singleURL, channels: [configuration.redis!.channel], eventLoop: group.next(), logger: logger,
                tls: backend.tlsContext, cluster: backend.clusterClient,
                onMessage: { _, payload in
                    guard let message = try? JSONDecoder().decode(FanoutMessage.self, from: Data(payload.readableBytesView)) else { return }
                    follower.received(message)
                    // This node's own purges too: its marks are read again once they are set.
                    redisTier.forgetMarks(of: message.tags)
                    if message.node != nodeID { invalidator.applyRemote(message.request) }
                },
                // Purges published while the subscription was down are read from the purge log;
                // L1 is dropped only when the log cannot say what they were. The tags' marks are
                // remembered only while the subscription is live (`TagMarkCache`).
                onResubscribed: {
                    redisTier.fanoutIsLive()
                    Task { await follower.resubscribed() }
                },
                onSubscribed: {
                    redisTier.fanoutIsLive()
                    Task { await follower.subscribed() }
                },
                onLost: {
                    redisTier.fanoutWasLost()
                    follower.lost()
                })
        } else {
            purgeLog = nil
        }
        self.subscriber = subscriber
        self.purgeLog = purgeLog
        if let settings = configuration.postgres {
            let url: PostgresURL
            do { url = try PostgresURL(parsing: settings.url) } catch { throw ConfigError(key: "postgres.url", "\(error)") }
            let loop = group.next()
            // With Redis the cursor lives there (per node), else in a file in the state directory.
            let cursorStore: any CursorStore
            if let redis {
                cursorStore = RedisCursorStore(
                    backend: redis, channel: settings.channel, node: "\(ProcessInfo.processInfo.hostName):\(configuration.listen.port)",
                    loop: loop)
            } else {
                let path = settings.cursorPath(stateDirectory: configuration.stateDirectory)
                let directory = (path as NSString).deletingLastPathComponent
                do {
                    if !directory.isEmpty { try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true) }
                } catch {
                    throw ConfigError(
                        key: settings.cursorFile == nil ? "state_dir" : "postgres.cursor_file",
                        "cannot create \(directory) for the change feed's cursor: \(error.localizedDescription)")
                }
                cursorStore = FileCursorStore(path: path)
            }
            do {
                feed = try ChangeFeed(
                    url: url, channel: settings.channel, cursorStore: cursorStore, logger: logger,
                    apply: { tags in
                        let (_, shared) = invalidator.purge(PurgeRequest(tags: tags), on: loop)
                        try? await shared?.get()
                    },
                    purgeEverything: {
                        let (_, shared) = invalidator.purge(PurgeRequest(everything: true), on: loop)
                        try? await shared?.get()
                    })
            } catch {
                throw ConfigError(key: "postgres.url", "\(error)")
            }
        } else {
            feed = nil
        }
        let context = ProxyContext(
            store: store,
            routes: routes,
            invalidator: invalidator,
            stats: stats,
            metrics: metrics,
            configuration: configuration,
            logger: logger,
            accessLogSink: accessLogSink ?? AccessLog.standardOutput
        )
        self.context = context
        let listings = Reloadable(
            Listings(settings: configuration.listings, fetcher: ListingFetcher(proxy: context), clock: clock, logger: logger))
        invalidator.onPurge { request, keys in listings.current.invalidate(request, keys: keys) }
        self.listings = listings
        let feed = self.feed
        self.adminAPI = AdminAPI(
            token: token, invalidator: invalidator, store: store, stats: stats, metrics: metrics, listings: listings,
            feedStatus: { feed?.status }, purgeLogStatus: { purgeLog?.status })
    }

    /// Binds the listeners: the proxy, the admin API and, when configured, the probes.
    @discardableResult
    public func start() async throws -> Listening {
        let proxyChannel = try await bindProxy(configuration.listen)
        let tlsChannel: (any Channel)?
        do {
            if let tls = configuration.tls {
                tlsChannel = try await bindProxy(tls.listen, tls: certificates)
            } else {
                tlsChannel = nil
            }
        } catch {
            try? await proxyChannel.close()
            throw error
        }
        let adminChannel: any Channel
        let probeChannel: (any Channel)?
        do {
            adminChannel = try await bindAdmin(configuration.admin.listen, access: .admin)
            do {
                if let probes = configuration.probes {
                    probeChannel = try await bindAdmin(probes.listen, access: .probes)
                } else {
                    probeChannel = nil
                }
            } catch {
                try? await adminChannel.close()
                throw error
            }
        } catch {
            try? await proxyChannel.close()
            try? await tlsChannel?.close()
            throw error
        }
        channels.withLock { $0 = [proxyChannel, adminChannel] + [probeChannel, tlsChannel].compactMap { $0 } }
        startCertificateCheck()
        redis?.warmUp(on: group.next())
        subscriber?.start()
        if let feed {
            feedTask.withLock { $0 = Task { try? await feed.run() } }
        }
        listings.current.start(on: group.next())
        if loadConfiguration != nil {
            adminAPI.onReload { [weak self] in
                self?.reload() ?? ReloadReport.refused(generation: 0, "stopped")
            }
        }
        adminAPI.markReady(true)
        let listening = Listening(
            proxy: proxyChannel.localAddress!, admin: adminChannel.localAddress!, probes: probeChannel?.localAddress,
            tls: tlsChannel?.localAddress)
        logger.info(
            "listening",
            metadata: [
                "proxy": "\(listening.proxy)", "admin": "\(listening.admin)", "probes": "\(listening.probes.map { "\($0)" } ?? "off")",
                "tls": "\(listening.tls.map { "\($0)" } ?? "off")",
                "routes": "\(context.router.routeCount)", "event_loops": "\(Array(group.makeIterator()).count)",
            ])
        return listening
    }

    /// Closes the listeners and idle origin connections.
    public func stop() async {
        adminAPI.markReady(false)
        listings.current.stop()
        let open = channels.withLock { channels in
            defer { channels.removeAll() }
            return channels
        }
        for channel in open { try? await channel.close() }
        context.router.closeIdleConnections()
        await subscriber?.shutdown()
        await redis?.shutdown()
        feedTask.withLock { task in
            task?.cancel()
            task = nil
        }
        certificateCheck.withLock { task in
            task?.cancel()
            task = nil
        }
        // The last batch of access log lines, which would otherwise wait for a timer.
        context.accessLog?.flush()
    }

    /// Reads the configuration again (`SIGHUP`, `POST /reload`) and, when it is valid, puts its
    /// origins, routes and listings in place for every request from now on: L1, the shared tier
    /// and open connections carry on. A file that does not load or validate changes nothing.
    /// Sections that only a restart can change are reported, and keep their running values.
    @discardableResult
    package func reload() -> ReloadReport {
        guard let loadConfiguration else {
            return ReloadReport.refused(generation: 1, "not started from a config file")
        }
        let report = running.withLock { running -> ReloadReport in
            let loaded: VitrineConfiguration
            do {
                loaded = try loadConfiguration()
                try loaded.validate()
            } catch {
                let reason = (error as? ConfigError)?.description ?? "\(error)"
                return ReloadReport.refused(generation: running.generation, reason)
            }
            let change = ConfigurationChange(from: running.configuration, to: loaded)
            let next = ConfigurationChange.merged(running: running.configuration, loaded: loaded)
            // Whatever does not load refuses the whole reload, as nginx's does: nothing changes,
            // and what runs keeps serving. The new routes are checked before the certificates
            // are swapped, so that no refusal comes after something was applied.
            let previous = context.routes.current
            let router = change.applied.isEmpty ? nil : Router(configuration: next, group: group, reusing: previous)
            if let failure = router?.originTLSFailures.first {
                return ReloadReport.refused(generation: running.generation, "origins.\(failure.origin).ca: no TLS client: \(failure.reason)")
            }
            if change.applied.contains("tls"), let certificates, let tls = next.tls {
                do {
                    try certificates.reload(tls)
                } catch {
                    return ReloadReport.refused(generation: running.generation, "tls.certificates: \(error)")
                }
            }
            if let router {
                context.routes.replace(with: router)
                for dropped in previous.originsDropped(by: router) { dropped.closeIdle() }
                if change.applied.contains("listings") || next.routes.map(\.key) != running.configuration.routes.map(\.key) {
                    // New pages (or new keys for them): a new set warms up; the old one serves
                    // until it is replaced, then stops.
                    let fresh = Listings(settings: next.listings, fetcher: ListingFetcher(proxy: context), clock: clock, logger: logger, replacing: true)
                    fresh.start(on: group.next())
                    listings.replace(with: fresh).stop()
                }
            }
            running.configuration = next
            running.generation += 1
            return ReloadReport(
                applied: true, generation: running.generation, changed: change.applied, needsRestart: change.needsRestart, error: nil)
        }
        context.metrics.reloaded(report.applied ? "applied" : "rejected", generation: report.generation)
        if report.applied {
            logger.notice(
                "configuration reloaded",
                metadata: [
                    "generation": "\(report.generation)", "changed": "\(report.changed)", "needs_restart": "\(report.needsRestart)",
                    "routes": "\(context.router.routeCount)",
                ])
            if !report.needsRestart.isEmpty {
                logger.warning("configuration sections changed that only a restart applies", metadata: ["sections": "\(report.needsRestart)"])
            }
        } else {
            logger.error("configuration reload refused; nothing changed", metadata: ["error": "\(report.error ?? "")"])
        }
        return report
    }

    /// Serves until graceful shutdown (`SIGTERM`), then drains and stops. With a config file,
    /// `SIGHUP` reloads it meanwhile.
    public func run() async throws {
        try await start()
        let hangups: Task<Void, Never>? =
            loadConfiguration == nil
            ? nil
            : Task { [weak self] in
                for await _ in await UnixSignalsSequence(trapping: .sighup) {
                    guard let self, !Task.isCancelled else { return }
                    self.reload()
                }
            }
        try? await gracefulShutdown()
        hangups?.cancel()
        await drain()
        await stop()
    }

    /// Drains the node, as `SIGTERM` asks: `/readyz` says 503 at once while the listener still
    /// accepts for `server.drain_delay` (a load balancer's time to notice), and every answer from
    /// then on says `Connection: close`. Then the listener closes, idle connections close, and
    /// those answering finish (streamed bodies too) within `server.drain_timeout`. Returns when
    /// all are closed or the timeout has passed (the rest are then cut by `stop`'s caller).
    public func drain() async {
        let delay = configuration.server.drainDelay
        let timeout = configuration.server.drainTimeout
        logger.notice(
            "draining", metadata: ["drain_delay": "\(delay)", "drain_timeout": "\(timeout)", "connections": "\(context.openConnections.load(ordering: .relaxed))"])
        adminAPI.markDraining()
        context.draining.store(true, ordering: .relaxed)
        context.metrics.markDraining()
        if delay > .zero { try? await Task.sleep(for: delay) }
        let loop = group.next()
        let allClosed = loop.makePromise(of: Void.self)
        let done = loop.makePromise(of: Bool.self)
        // Whichever comes first settles it: all closed, or the timeout.
        let settled = FirstCall()
        let settle: @Sendable (Bool) -> Void = { finished in
            if settled.isFirst() { done.succeed(finished) }
        }
        let timer = loop.scheduleTask(in: .nanoseconds(Int64(timeout.nanosecondsClamped))) { settle(false) }
        quiescing.initiateShutdown(promise: allClosed)
        var closed = allClosed.futureResult
        if let quiescingTLS {
            let tlsClosed = loop.makePromise(of: Void.self)
            quiescingTLS.initiateShutdown(promise: tlsClosed)
            closed = closed.and(tlsClosed.futureResult).map { _ in }
        }
        closed.whenComplete { _ in settle(true) }
        let finished = (try? await done.futureResult.get()) ?? false
        timer.cancel()
        if finished {
            logger.notice("drained: every connection finished")
        } else {
            logger.warning(
                "drain timeout: connections still open are cut", metadata: ["connections": "\(context.openConnections.load(ordering: .relaxed))"])
        }
    }

    /// Reads the certificate files again every `tls.check_interval`, when they changed (a
    /// renewal): served from the next handshake on. Files that do not load keep the running
    /// certificates, and are tried again at the next check.
    private func startCertificateCheck() {
        guard let certificates, let interval = configuration.tls?.checkInterval, interval > .zero else { return }
        let logger = self.logger
        certificateCheck.withLock { task in
            task = Task {
                while !Task.isCancelled {
                    try? await Task.sleep(for: interval)
                    do {
                        if try certificates.reloadIfFilesChanged() {
                            logger.notice("TLS certificates reloaded: their files changed", metadata: ["names": "\(certificates.names)"])
                        }
                    } catch {
                        logger.error("TLS certificate files changed but do not load; the running certificates stay", metadata: ["error": "\(error)"])
                    }
                }
            }
        }
    }

    /// The proxy listener (cleartext), or the TLS listener (`tls`: its certificates).
    private func bindProxy(_ address: ListenAddress, tls certificates: ServerCertificates? = nil) async throws -> any Channel {
        let context = self.context
        let listings = self.listings
        let quiescing = certificates == nil ? self.quiescing : self.quiescingTLS ?? self.quiescing
        let proxyProtocol = configuration.server.proxyProtocol
        return try await ServerBootstrap(group: group)
            .serverChannelOption(.backlog, value: 1024)
            .serverChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(quiescing.makeServerChannelHandler(channel: channel))
                }
            }
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelOption(.socketOption(.tcp_nodelay), value: 1)
            .childChannelOption(.maxMessagesPerRead, value: 16)
            // Unwritable past the pending-output bound: the connection then stops taking requests.
            .childChannelOption(
                .writeBufferWaterMark,
                value: .init(low: context.limits.maxPendingOutput.bytes / 2, high: context.limits.maxPendingOutput.bytes))
            .childChannelInitializer { channel in
                let open = context.openConnections.wrappingAdd(1, ordering: .relaxed).newValue
                channel.closeFuture.whenComplete { _ in context.openConnections.wrappingSubtract(1, ordering: .relaxed) }
                guard open <= context.limits.maxConnections else {
                    // Over the cap: closed before a byte is read (nginx's worker_connections).
                    context.stats.increment(.connectionsRefused)
                    return channel.close()
                }
                return channel.eventLoop.makeCompletedFuture {
                    try ProxyChannels.configureProxyConnection(
                        channel, proxy: context, listings: listings, proxyProtocol: proxyProtocol, tls: certificates?.context)
                }
            }
            .bind(host: address.host, port: address.port)
            .get()
    }

    /// The admin listener (every call, with the token) or the probe listener (health,
    /// readiness and metrics, without).
    private func bindAdmin(_ address: ListenAddress, access: AdminAPI.Access) async throws -> any Channel {
        let api = adminAPI
        return try await ServerBootstrap(group: group)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try ProxyChannels.configureAdminConnection(channel, api: api, access: access)
                }
            }
            .bind(host: address.host, port: address.port)
            .get()
    }
}

/// Says yes once: to the first of several callbacks racing to settle one promise.
final class FirstCall: Sendable {
    private let called = Mutex(false)

    func isFirst() -> Bool {
        called.withLock { called in
            defer { called = true }
            return !called
        }
    }
}
