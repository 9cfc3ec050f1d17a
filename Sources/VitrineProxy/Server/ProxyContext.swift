import Logging
import NIOCore
import NIOHTTP1
import Synchronization
import VitrineConfig
import VitrineCore

/// What every client connection and every fetch shares: the store, the routes, the origin
/// pools, the purge path and the counters. Built once per node, before the listings (which
/// reach it through their `ListingFetcher`); it holds nothing that holds it.
package final class ProxyContext: Sendable {
    package let store: ResponseStore
    /// The routes and their origins' pools, replaced whole by a reload.
    package let routes: Reloadable<Router>
    package let invalidator: Invalidator
    let collapser: RequestCollapser
    /// Variants stored per URL (`vary.max_variants`).
    let variants = VariantLimiter()
    package let stats: ProxyStats
    package let metrics: ProxyMetrics
    package let limits: LimitSettings
    let timeouts: TimeoutSettings
    /// Client connections open on the proxy listener (`limits.max_connections` bounds it).
    package let openConnections = Atomic<Int>(0)
    let maxObjectSize: Int
    /// The access log, when `server.access_log` is on.
    package let accessLog: AccessLog?
    /// Whose `X-Forwarded-For` and `X-Forwarded-Proto` are believed.
    let trustedProxies: [CIDRBlock]
    /// Set when the node starts to drain: every answer from then on closes its connection.
    package let draining = Atomic<Bool>(false)
    /// This process's part of request ids (random, so ids from a fleet's nodes do not collide).
    let requestIDPrefix: String
    /// Client connections accepted so far (a connection's number in its requests' ids).
    let connectionsAccepted = Atomic<UInt64>(0)
    let logger: Logger
    /// How long a write's answer waits for its purge to reach the shared tier.
    let writePurgeTimeout: Duration

    package init(
        store: ResponseStore, routes: Reloadable<Router>, invalidator: Invalidator, stats: ProxyStats,
        metrics: ProxyMetrics, configuration: VitrineConfiguration, logger: Logger,
        accessLogSink: @escaping @Sendable ([UInt8]) -> Void = AccessLog.standardOutput
    ) {
        self.store = store
        self.routes = routes
        self.invalidator = invalidator
        self.collapser = RequestCollapser(maxWait: configuration.cache.collapseWait)
        self.stats = stats
        self.metrics = metrics
        self.limits = configuration.limits
        self.timeouts = configuration.timeouts
        self.maxObjectSize = configuration.cache.maxObjectSize.bytes
        self.accessLog =
            configuration.server.accessLog
            ? AccessLog(format: configuration.server.accessLogFormat, sample: configuration.server.accessLogSample, sink: accessLogSink)
            : nil
        self.trustedProxies = configuration.server.trustedProxies
        self.requestIDPrefix = String(UInt32.random(in: 0...UInt32.max), radix: 16)
        self.writePurgeTimeout = configuration.redis?.writePurgeTimeout ?? .milliseconds(500)
        self.logger = logger
    }

    /// A request's answer is written (or abandoned): counted, timed, and logged when the
    /// access log is on.
    func observe(_ record: RequestRecord, bytes: Int, on loop: any EventLoop) {
        let finished = NIODeadline.now()
        metrics.observe(record, duration: finished - record.started)
        accessLog?.record(record, bytes: bytes, finished: finished, on: loop)
    }

    /// The routes now (a connection reads them through its own copy: `Reloadable.current(through:)`).
    package var router: Router { routes.current }

    /// The shared tier when this node may read it: not while purges it made have not reached
    /// the tier (it may still hold what they purged), and not without one.
    var readableTier: (any SharedTier)? {
        invalidator.outbox.isEmpty ? tier : nil
    }

    /// How long a fetch lease is held: long enough for an origin answer, never long enough to
    /// stall the fleet if the holder dies.
    var fetchLease: Duration {
        min(collapser.maxWait, .seconds(2))
    }

    /// The shared second tier (the invalidator purges it too).
    package var tier: (any SharedTier)? { invalidator.tier }
}
