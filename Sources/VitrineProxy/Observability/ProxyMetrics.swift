import VitrineCore
import CoreMetrics
import Metrics
import Prometheus
import Synchronization

/// The proxy's Prometheus metrics, created through swift-metrics on a registry of its own (so
/// that several proxies can live in one process, as they do in tests).
package final class ProxyMetrics: Sendable {
    let registry: PrometheusCollectorRegistry
    let hits: CoreMetrics.Counter
    let misses: CoreMetrics.Counter
    let passes: CoreMetrics.Counter
    let stale: CoreMetrics.Counter
    let errors: CoreMetrics.Counter
    let purges: CoreMetrics.Counter
    let originLatency: CoreMetrics.Timer
    let entries: CoreMetrics.Gauge
    let bytes: CoreMetrics.Gauge
    private let feed: FeedMetrics
    private let purgeDelivery: PurgeDeliveryMetrics
    private let listings: ListingMetrics

    package init() {
        let registry = PrometheusCollectorRegistry()
        var factory = PrometheusMetricsFactory(registry: registry)
        factory.defaultDurationHistogramBuckets = [
            .microseconds(500), .milliseconds(1), .milliseconds(2), .milliseconds(5), .milliseconds(10),
            .milliseconds(25), .milliseconds(50), .milliseconds(100), .milliseconds(250), .milliseconds(500),
            .seconds(1), .seconds(2), .seconds(5), .seconds(10),
        ]
        self.registry = registry
        func requests(_ result: String) -> CoreMetrics.Counter {
            CoreMetrics.Counter(label: "vitrine_requests_total", dimensions: [("result", result)], factory: factory)
        }
        hits = requests("hit")
        misses = requests("miss")
        passes = requests("pass")
        stale = requests("stale")
        errors = requests("error")
        purges = CoreMetrics.Counter(label: "vitrine_purges_total", factory: factory)
        originLatency = CoreMetrics.Timer(label: "vitrine_origin_response_seconds", factory: factory)
        entries = CoreMetrics.Gauge(label: "vitrine_cache_entries", factory: factory)
        bytes = CoreMetrics.Gauge(label: "vitrine_cache_bytes", factory: factory)
        feed = FeedMetrics(factory: factory)
        purgeDelivery = PurgeDeliveryMetrics(factory: factory)
        listings = ListingMetrics(factory: factory)
    }

    /// The listings' state, as of this scrape.
    func record(_ status: Listings.Status) {
        listings.record(status)
    }

    /// The purge outbox and the purge log, as of this scrape.
    func record(outbox: PurgeOutbox.Status, log: PurgeLogStatus?) {
        purgeDelivery.record(outbox: outbox, log: log)
    }

    /// The change feed's state, as of this scrape.
    func record(_ status: ChangeFeedStatus) {
        feed.record(status)
    }

    /// The Prometheus text exposition.
    func exposition() -> [UInt8] {
        registry.emitToBuffer()
    }
}

/// The change feed in Prometheus: its state as gauges, its running totals as counters (advanced
/// by what changed since the previous scrape).
final class FeedMetrics: Sendable {
    private let connected: CoreMetrics.Gauge
    private let cursor: CoreMetrics.Gauge
    private let lagRows: CoreMetrics.Gauge
    private let lagSeconds: CoreMetrics.Gauge
    private let applied: CoreMetrics.Counter
    private let replayed: CoreMetrics.Counter
    private let reconnects: CoreMetrics.Counter
    private let fullPurges: CoreMetrics.Counter
    private let reported = Mutex(ChangeFeedStatus())

    init(factory: PrometheusMetricsFactory) {
        connected = CoreMetrics.Gauge(label: "vitrine_feed_connected", factory: factory)
        cursor = CoreMetrics.Gauge(label: "vitrine_feed_cursor", factory: factory)
        lagRows = CoreMetrics.Gauge(label: "vitrine_feed_lag_rows", factory: factory)
        lagSeconds = CoreMetrics.Gauge(label: "vitrine_feed_lag_seconds", factory: factory)
        applied = CoreMetrics.Counter(label: "vitrine_feed_applied_rows_total", factory: factory)
        replayed = CoreMetrics.Counter(label: "vitrine_feed_replayed_rows_total", factory: factory)
        reconnects = CoreMetrics.Counter(label: "vitrine_feed_reconnects_total", factory: factory)
        fullPurges = CoreMetrics.Counter(label: "vitrine_feed_full_purges_total", factory: factory)
    }

    func record(_ status: ChangeFeedStatus) {
        connected.record(status.state == "connected" ? 1 : 0)
        cursor.record(status.cursor)
        lagRows.record(status.lagRows)
        lagSeconds.record(Double(status.lagMilliseconds) / 1_000)
        let previous = reported.withLock { reported in
            defer { reported = status }
            return reported
        }
        applied.increment(by: max(0, status.appliedRows - previous.appliedRows))
        replayed.increment(by: max(0, status.replayedRows - previous.replayedRows))
        reconnects.increment(by: max(0, status.reconnects - previous.reconnects))
        fullPurges.increment(by: max(0, status.fullPurges - previous.fullPurges))
    }
}

/// Purges on their way to the fleet: the node-local outbox, and what the purge log caught up or
/// could not (L1 drops).
final class PurgeDeliveryMetrics: Sendable {
    private let backlog: CoreMetrics.Gauge
    private let delivered: CoreMetrics.Counter
    private let caughtUp: CoreMetrics.Counter
    private let l1Drops: CoreMetrics.Counter
    private let reported = Mutex((delivered: 0, caughtUp: 0, l1Drops: 0))

    init(factory: any MetricsFactory) {
        backlog = CoreMetrics.Gauge(label: "vitrine_purge_outbox_backlog", factory: factory)
        delivered = CoreMetrics.Counter(label: "vitrine_purge_outbox_delivered_total", factory: factory)
        caughtUp = CoreMetrics.Counter(label: "vitrine_purge_log_caught_up_total", factory: factory)
        l1Drops = CoreMetrics.Counter(label: "vitrine_l1_drops_total", factory: factory)
    }

    func record(outbox: PurgeOutbox.Status, log: PurgeLogStatus?) {
        backlog.record(outbox.backlog)
        let now = (delivered: outbox.delivered, caughtUp: log?.caughtUp ?? 0, l1Drops: log?.l1Drops ?? 0)
        let previous = reported.withLock { reported in
            defer { reported = now }
            return reported
        }
        delivered.increment(by: max(0, now.delivered - previous.delivered))
        caughtUp.increment(by: max(0, now.caughtUp - previous.caughtUp))
        l1Drops.increment(by: max(0, now.l1Drops - previous.l1Drops))
    }
}

/// Precomputed listings in Prometheus.
final class ListingMetrics: Sendable {
    private let count: CoreMetrics.Gauge
    private let warm: CoreMetrics.Gauge
    private let bytes: CoreMetrics.Gauge
    private let latency: CoreMetrics.Gauge
    private let hits: CoreMetrics.Counter
    private let refreshes: CoreMetrics.Counter
    private let failures: CoreMetrics.Counter
    private let reported = Mutex(Listings.Status())

    init(factory: PrometheusMetricsFactory) {
        count = CoreMetrics.Gauge(label: "vitrine_listings", factory: factory)
        warm = CoreMetrics.Gauge(label: "vitrine_listings_warm", factory: factory)
        bytes = CoreMetrics.Gauge(label: "vitrine_listings_bytes", factory: factory)
        latency = CoreMetrics.Gauge(label: "vitrine_listings_last_refresh_seconds", factory: factory)
        hits = CoreMetrics.Counter(label: "vitrine_listings_hits_total", factory: factory)
        refreshes = CoreMetrics.Counter(label: "vitrine_listings_refreshes_total", factory: factory)
        failures = CoreMetrics.Counter(label: "vitrine_listings_refresh_failures_total", factory: factory)
    }

    func record(_ status: Listings.Status) {
        count.record(status.count)
        warm.record(status.warm ? 1 : 0)
        bytes.record(status.bytes)
        latency.record(status.lastRefreshLatencyMilliseconds / 1_000)
        let previous = reported.withLock { reported in
            defer { reported = status }
            return reported
        }
        hits.increment(by: max(0, status.hits - previous.hits))
        refreshes.increment(by: max(0, status.refreshes - previous.refreshes))
        failures.increment(by: max(0, status.failures - previous.failures))
    }
}
