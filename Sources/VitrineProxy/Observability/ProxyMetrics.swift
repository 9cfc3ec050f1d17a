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

/// The change feed in Prometheus: its state as gauges, its running totals as counters.
final class FeedMetrics: Sendable {
    private let connected: CoreMetrics.Gauge
    private let cursor: CoreMetrics.Gauge
    private let lagRows: CoreMetrics.Gauge
    private let lagSeconds: CoreMetrics.Gauge
    private let applied: TotalCounter
    private let replayed: TotalCounter
    private let reconnects: TotalCounter
    private let fullPurges: TotalCounter

    init(factory: PrometheusMetricsFactory) {
        connected = CoreMetrics.Gauge(label: "vitrine_feed_connected", factory: factory)
        cursor = CoreMetrics.Gauge(label: "vitrine_feed_cursor", factory: factory)
        lagRows = CoreMetrics.Gauge(label: "vitrine_feed_lag_rows", factory: factory)
        lagSeconds = CoreMetrics.Gauge(label: "vitrine_feed_lag_seconds", factory: factory)
        applied = TotalCounter(label: "vitrine_feed_applied_rows_total", factory: factory)
        replayed = TotalCounter(label: "vitrine_feed_replayed_rows_total", factory: factory)
        reconnects = TotalCounter(label: "vitrine_feed_reconnects_total", factory: factory)
        fullPurges = TotalCounter(label: "vitrine_feed_full_purges_total", factory: factory)
    }

    func record(_ status: ChangeFeedStatus) {
        connected.record(status.state == "connected" ? 1 : 0)
        cursor.record(status.cursor)
        lagRows.record(status.lagRows)
        lagSeconds.record(Double(status.lagMilliseconds) / 1_000)
        applied.record(total: status.appliedRows)
        replayed.record(total: status.replayedRows)
        reconnects.record(total: status.reconnects)
        fullPurges.record(total: status.fullPurges)
    }
}

/// Purges on their way to the fleet: the node-local outbox, and what the purge log caught up or
/// could not (L1 drops).
final class PurgeDeliveryMetrics: Sendable {
    private let backlog: CoreMetrics.Gauge
    private let delivered: TotalCounter
    private let caughtUp: TotalCounter
    private let l1Drops: TotalCounter

    init(factory: any MetricsFactory) {
        backlog = CoreMetrics.Gauge(label: "vitrine_purge_outbox_backlog", factory: factory)
        delivered = TotalCounter(label: "vitrine_purge_outbox_delivered_total", factory: factory)
        caughtUp = TotalCounter(label: "vitrine_purge_log_caught_up_total", factory: factory)
        l1Drops = TotalCounter(label: "vitrine_l1_drops_total", factory: factory)
    }

    func record(outbox: PurgeOutbox.Status, log: PurgeLogStatus?) {
        backlog.record(outbox.backlog)
        delivered.record(total: outbox.delivered)
        caughtUp.record(total: log?.caughtUp ?? 0)
        l1Drops.record(total: log?.l1Drops ?? 0)
    }
}

/// Precomputed listings in Prometheus.
final class ListingMetrics: Sendable {
    private let count: CoreMetrics.Gauge
    private let warm: CoreMetrics.Gauge
    private let bytes: CoreMetrics.Gauge
    private let latency: CoreMetrics.Gauge
    private let hits: TotalCounter
    private let refreshes: TotalCounter
    private let failures: TotalCounter

    init(factory: PrometheusMetricsFactory) {
        count = CoreMetrics.Gauge(label: "vitrine_listings", factory: factory)
        warm = CoreMetrics.Gauge(label: "vitrine_listings_warm", factory: factory)
        bytes = CoreMetrics.Gauge(label: "vitrine_listings_bytes", factory: factory)
        latency = CoreMetrics.Gauge(label: "vitrine_listings_last_refresh_seconds", factory: factory)
        hits = TotalCounter(label: "vitrine_listings_hits_total", factory: factory)
        refreshes = TotalCounter(label: "vitrine_listings_refreshes_total", factory: factory)
        failures = TotalCounter(label: "vitrine_listings_refresh_failures_total", factory: factory)
    }

    func record(_ status: Listings.Status) {
        count.record(status.count)
        warm.record(status.warm ? 1 : 0)
        bytes.record(status.bytes)
        latency.record(status.lastRefreshLatencyMilliseconds / 1_000)
        hits.record(total: status.hits)
        refreshes.record(total: status.refreshes)
        failures.record(total: status.failures)
    }
}
