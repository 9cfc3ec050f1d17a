import NIOCore
import Prometheus
import Synchronization
import VitrineCore

/// The proxy's Prometheus metrics, on a registry of its own (so that several proxies can live in
/// one process, as they do in tests). Names and labels follow Prometheus' conventions: `_total`
/// counters, `_seconds` histograms, a HELP text for each.
package final class ProxyMetrics: Sendable {
    let registry: PrometheusCollectorRegistry
    let hits: Counter
    let misses: Counter
    let passes: Counter
    let stale: Counter
    let errors: Counter
    let purges: Counter
    private let entries: Gauge
    private let bytes: Gauge
    private let redisUp: Gauge
    private let draining: Gauge
    private let reloads = LabelledSeries<String, Counter>()
    private let configGeneration: Gauge
    /// Per-request series, made on first use (routes come and go with reloads).
    private let requestSeries = LabelledSeries<RequestSeriesKey, Counter>()
    private let durations: [CacheLabel: DurationHistogram]
    private let originSeries = LabelledSeries<String, OriginSeries>()
    /// Per cluster shard, by primary (a failover adds the promoted replica's).
    private let shardSeries = LabelledSeries<String, ShardSeries>()
    /// Everything `/stats` counts, as `vitrine_<name>_total`.
    private let totals: [ProxyStats.Counter: TotalCounter]
    private let feed: FeedMetrics
    private let purgeDelivery: PurgeDeliveryMetrics
    private let listings: ListingMetrics

    static let durationBuckets: [Duration] = [
        .microseconds(100), .microseconds(250), .microseconds(500), .milliseconds(1), .milliseconds(2), .milliseconds(5),
        .milliseconds(10), .milliseconds(25), .milliseconds(50), .milliseconds(100), .milliseconds(250), .milliseconds(500),
        .seconds(1), .seconds(2), .seconds(5), .seconds(10),
    ]

    /// The `cache` label: what the cache did, or `none` for the proxy's own answers.
    enum CacheLabel: String, CaseIterable {
        case hit, miss, stale, pass, none

        init(_ result: CacheResult?) {
            switch result {
            case .hit: self = .hit
            case .miss: self = .miss
            case .stale: self = .stale
            case .pass: self = .pass
            case nil: self = .none
            }
        }
    }

    private struct RequestSeriesKey: Hashable {
        let route: String
        let method: MethodClass
        let statusClass: Int
        let cache: CacheLabel
    }

    package init() {
        let registry = PrometheusCollectorRegistry()
        self.registry = registry
        func requests(_ result: String) -> Counter {
            registry.counter(
                name: "vitrine_requests_total", labels: [("result", result)],
                help: "Requests by what the cache did (hit, miss, stale, pass) or error (answered by the proxy itself).")
        }
        hits = requests("hit")
        misses = requests("miss")
        passes = requests("pass")
        stale = requests("stale")
        errors = requests("error")
        purges = registry.counter(name: "vitrine_purges_total", help: "Purge requests applied on this node (admin API, feed, writes).")
        entries = registry.gauge(name: "vitrine_cache_entries", help: "Entries in L1.")
        bytes = registry.gauge(name: "vitrine_cache_bytes", help: "Bytes L1 holds, against cache.memory.")
        redisUp = registry.gauge(
                name: "vitrine_redis_up", help: "1 while the shared tier (Redis) is reachable, 0 when it is down; absent without one.")
        draining = registry.gauge(name: "vitrine_draining", help: "1 once the node has been told to stop and drains.")
        configGeneration = registry.gauge(name: "vitrine_config_generation", help: "Configurations loaded since start (1: the first).")
        configGeneration.set(Int64(1))
        var durations: [CacheLabel: DurationHistogram] = [:]
        for label in CacheLabel.allCases {
            durations[label] = registry.durationHistogram(
                name: "vitrine_http_request_duration_seconds", labels: [("cache", label.rawValue)], buckets: Self.durationBuckets,
                help: "Time from a request's head to the end of its answer, as the client sees it, by cache result.")
        }
        self.durations = durations
        var totals: [ProxyStats.Counter: TotalCounter] = [:]
        for counter in ProxyStats.Counter.allCases {
            totals[counter] = TotalCounter(name: "vitrine_\(counter.metricName)_total", help: counter.help, registry: registry)
        }
        self.totals = totals
        feed = FeedMetrics(registry: registry)
        purgeDelivery = PurgeDeliveryMetrics(registry: registry)
        listings = ListingMetrics(registry: registry)
        // Both outcomes exist from the start, at zero: `increase()` then sees the first reload.
        reloaded("applied", generation: 1, count: false)
        reloaded("rejected", generation: 1, count: false)
    }

    /// One answered request: counted by route, method class, status class and cache result, and
    /// its duration observed by cache result.
    func observe(_ record: RequestRecord, duration: TimeAmount) {
        let cache = CacheLabel(record.result)
        let key = RequestSeriesKey(
            route: record.route, method: MethodClass(record.head.method), statusClass: min(max(record.status / 100, 1), 5), cache: cache)
        let counter = requestSeries.series(key) {
            registry.counter(
                name: "vitrine_http_requests_total",
                labels: [("route", key.route), ("method", key.method.rawValue), ("status", "\(key.statusClass)xx"), ("cache", cache.rawValue)],
                help: "Answered requests by route prefix, method class (read, write, other), status class and cache result.")
        }
        counter.increment()
        durations[cache]?.recordNanoseconds(max(duration.nanoseconds, 0))
    }

    /// An origin's answer (its head) came after `nanoseconds`.
    func originAnswered(_ origin: String, nanoseconds: Int64) {
        originSeries(origin).latency.recordNanoseconds(max(nanoseconds, 0))
    }

    /// An origin gave no usable answer.
    func originFailed(_ origin: String) {
        originSeries(origin).errors.increment()
    }

    /// An origin's latency histogram and error counter.
    private struct OriginSeries: Sendable {
        let latency: DurationHistogram
        let errors: Counter
    }

    private func originSeries(_ origin: String) -> OriginSeries {
        originSeries.series(origin) {
            OriginSeries(
                latency: registry.durationHistogram(
                    name: "vitrine_origin_response_seconds", labels: [("origin", origin)], buckets: Self.durationBuckets,
                    help: "Time from a fetch's start to the origin's response head, by origin."),
                errors: registry.counter(
                    name: "vitrine_origin_errors_total", labels: [("origin", origin)],
                    help: "Fetches that got no usable answer from the origin (refused, timed out, malformed), by origin."))
        }
    }

    /// A configuration reload, by outcome (`applied` or `rejected`).
    package func reloaded(_ outcome: String, generation: Int, count: Bool = true) {
        let counter = reloads.series(outcome) {
            registry.counter(
                name: "vitrine_config_reloads_total", labels: [("outcome", outcome)],
                help: "Configuration reloads (SIGHUP, POST /reload) by outcome: applied, or rejected (nothing changed).")
        }
        if count { counter.increment() }
        configGeneration.set(Int64(generation))
    }

    /// The node has started to drain.
    package func markDraining() {
        draining.set(Int64(1))
    }

    /// The node's state as of this scrape: L1, the counters `/stats` keeps, the shared tier.
    func record(store: ResponseStore, stats: ProxyStats, tierState: String?, shards: [SharedTierShard] = []) {
        entries.set(Int64(store.entryCount))
        bytes.set(Int64(store.byteCount))
        for (counter, total) in totals { total.record(total: stats.value(counter)) }
        // A cluster with a shard down still serves the rest: reachable, and the shards say which.
        if let tierState { redisUp.set(Int64(tierState == "up" || tierState == "degraded" ? 1 : 0)) }
        for shard in shards {
            let series = shardSeries.series(shard.primary) { ShardSeries(primary: shard.primary, registry: registry) }
            series.up.set(Int64(shard.up ? 1 : 0))
            series.slots.set(Int64(shard.slots))
            series.failures.record(total: shard.failures)
        }
        // A primary no longer in the map (failed over) serves no slot.
        let current = Set(shards.map(\.primary))
        for (primary, series) in shardSeries.all() where !current.contains(primary) { series.slots.set(Int64(0)) }
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

extension ProxyStats.Counter {
    /// The counter's name in metrics (`vitrine_<name>_total`).
    var metricName: String {
        switch self {
        case .requests: "stats_requests"
        case .hits: "stats_hits"
        case .misses: "stats_misses"
        case .stale: "stale_served"
        case .passes: "stats_passes"
        case .notModified: "not_modified"
        case .purges: "stats_purges"
        case .purgedEntries: "purged_entries"
        case .originRequests: "origin_requests"
        case .originErrors: "stats_origin_errors"
        case .clientErrors: "client_errors"
        case .stored: "stored"
        case .clientTimeouts: "client_timeouts"
        case .connectionsRefused: "connections_refused"
        case .l2Hits: "l2_hits"
        case .l2Misses: "l2_misses"
        case .l2Errors: "l2_errors"
        case .remotePurges: "remote_purges"
        case .localOnlyWritePurges: "local_only_write_purges"
        case .collapsed: "collapsed_requests"
        case .revalidated: "revalidations"
        case .originPauses: "origin_pauses"
        }
    }

    var help: String {
        switch self {
        case .requests: "Requests received (as /stats counts them)."
        case .hits: "Hits (as /stats counts them)."
        case .misses: "Misses (as /stats counts them)."
        case .stale: "Stale entries served (stale-while-revalidate, stale-if-error, soft purges)."
        case .passes: "Passed requests (as /stats counts them)."
        case .notModified: "304 Not Modified answers given to clients from stored responses."
        case .purges: "Purges (as /stats counts them)."
        case .purgedEntries: "L1 entries removed by purges."
        case .originRequests: "Requests sent to origins."
        case .originErrors: "Origin fetches that failed (as /stats counts them)."
        case .clientErrors: "Answers the proxy gave itself with an error status."
        case .stored: "Responses stored in L1."
        case .clientTimeouts: "Client connections closed for a timeout (header, body, send)."
        case .connectionsRefused: "Connections closed at accept: over limits.max_connections."
        case .l2Hits: "Misses in L1 answered by the shared tier."
        case .l2Misses: "Misses in L1 the shared tier did not have."
        case .l2Errors: "Shared tier lookups that failed (Redis down or slow): the origin answered."
        case .remotePurges: "Purges received from other nodes."
        case .localOnlyWritePurges: "Writes answered before their purge reached the shared tier."
        case .collapsed: "Requests that waited for another request's fetch of the same key."
        case .revalidated: "Stale entries revalidated by the origin with 304 Not Modified."
        case .originPauses: "Origin responses paused because their client had too much unsent (backpressure)."
        }
    }
}

/// The change feed in Prometheus: its state as gauges, its running totals as counters.
final class FeedMetrics: Sendable {
    private let connected: Gauge
    private let cursor: Gauge
    private let lagRows: Gauge
    private let lagSeconds: Gauge
    private let applied: TotalCounter
    private let replayed: TotalCounter
    private let reconnects: TotalCounter
    private let fullPurges: TotalCounter

    init(registry: PrometheusCollectorRegistry) {
        connected = registry.gauge(name: "vitrine_feed_connected", help: "1 while the change feed listens to Postgres.")
        cursor = registry.gauge(name: "vitrine_feed_cursor", help: "The outbox position the feed has applied up to.")
        lagRows = registry.gauge(name: "vitrine_feed_lag_rows", help: "Outbox rows written but not yet applied.")
        lagSeconds = registry.gauge(name: "vitrine_feed_lag_seconds", help: "Age of the oldest outbox row not yet applied.")
        applied = TotalCounter(name: "vitrine_feed_applied_rows_total", help: "Outbox rows applied as purges.", registry: registry)
        replayed = TotalCounter(
            name: "vitrine_feed_replayed_rows_total", help: "Outbox rows read again after a reconnect.", registry: registry)
        reconnects = TotalCounter(name: "vitrine_feed_reconnects_total", help: "Times the feed reconnected to Postgres.", registry: registry)
        fullPurges = TotalCounter(
            name: "vitrine_feed_full_purges_total", help: "Whole-cache purges because the feed could not say what changed.",
            registry: registry)
    }

    func record(_ status: ChangeFeedStatus) {
        connected.set(Int64(status.state == "connected" ? 1 : 0))
        cursor.set(Int64(status.cursor))
        lagRows.set(Int64(status.lagRows))
        lagSeconds.set(Double(status.lagMilliseconds) / 1_000)
        applied.record(total: status.appliedRows)
        replayed.record(total: status.replayedRows)
        reconnects.record(total: status.reconnects)
        fullPurges.record(total: status.fullPurges)
    }
}

/// Purges on their way to the fleet: the node-local outbox, and what the purge log caught up or
/// could not (L1 drops).
final class PurgeDeliveryMetrics: Sendable {
    private let backlog: Gauge
    private let delivered: TotalCounter
    private let caughtUp: TotalCounter
    private let l1Drops: TotalCounter

    init(registry: PrometheusCollectorRegistry) {
        backlog = registry.gauge(name: "vitrine_purge_outbox_backlog", help: "Purges made here that have not reached Redis yet.")
        delivered = TotalCounter(
            name: "vitrine_purge_outbox_delivered_total", help: "Purges the outbox delivered to Redis late.", registry: registry)
        caughtUp = TotalCounter(
            name: "vitrine_purge_log_caught_up_total", help: "Purges read from the purge log after a lost subscription.",
            registry: registry)
        l1Drops = TotalCounter(
            name: "vitrine_l1_drops_total", help: "Times L1 was dropped because the purge log could not say what was missed.",
            registry: registry)
    }

    func record(outbox: PurgeOutbox.Status, log: PurgeLogStatus?) {
        backlog.set(Int64(outbox.backlog))
        delivered.record(total: outbox.delivered)
        caughtUp.record(total: log?.caughtUp ?? 0)
        l1Drops.record(total: log?.l1Drops ?? 0)
    }
}

/// One cluster shard's series, labelled by its primary.
final class ShardSeries: Sendable {
    let up: Gauge
    let slots: Gauge
    let failures: TotalCounter

    init(primary: String, registry: PrometheusCollectorRegistry) {
        let labels = [("primary", primary)]
        up = registry.gauge(
            name: "vitrine_redis_shard_up", labels: labels, help: "1 while the cluster shard's primary answers, 0 while commands to it fail.")
        slots = registry.gauge(name: "vitrine_redis_shard_slots", labels: labels, help: "Hash slots the cluster shard serves.")
        failures = TotalCounter(
            name: "vitrine_redis_shard_failures_total", labels: labels,
            help: "Commands to the cluster shard's primary that failed without an answer.", registry: registry)
    }
}

/// Precomputed listings in Prometheus.
final class ListingMetrics: Sendable {
    private let count: Gauge
    private let warm: Gauge
    private let bytes: Gauge
    private let latency: Gauge
    private let hits: TotalCounter
    private let refreshes: TotalCounter
    private let failures: TotalCounter

    init(registry: PrometheusCollectorRegistry) {
        count = registry.gauge(name: "vitrine_listings", help: "Listing pages configured.")
        warm = registry.gauge(name: "vitrine_listings_warm", help: "1 once every listing page has been fetched once.")
        bytes = registry.gauge(name: "vitrine_listings_bytes", help: "Bytes the listing pages hold.")
        latency = registry.gauge(name: "vitrine_listings_last_refresh_seconds", help: "How long the last listing refresh took.")
        hits = TotalCounter(name: "vitrine_listings_hits_total", help: "Requests answered from listing pages.", registry: registry)
        refreshes = TotalCounter(name: "vitrine_listings_refreshes_total", help: "Listing pages refreshed.", registry: registry)
        failures = TotalCounter(
            name: "vitrine_listings_refresh_failures_total", help: "Listing refreshes that failed (the old page is kept).",
            registry: registry)
    }

    func record(_ status: Listings.Status) {
        count.set(Int64(status.count))
        warm.set(Int64(status.warm ? 1 : 0))
        bytes.set(Int64(status.bytes))
        latency.set(Double(status.lastRefreshLatencyMilliseconds) / 1_000)
        hits.record(total: status.hits)
        refreshes.record(total: status.refreshes)
        failures.record(total: status.failures)
    }
}

/// Series of one metric made on first use, one per label value (routes come and go with reloads,
/// origins are known only when fetched from).
final class LabelledSeries<Key: Hashable & Sendable, Series: Sendable>: Sendable {
    private let made = Mutex<[Key: Series]>([:])

    /// Every series made so far.
    func all() -> [(Key, Series)] {
        made.withLock { made in made.map { ($0.key, $0.value) } }
    }

    /// The series for `key`, made by `make` the first time.
    func series(_ key: Key, make: () -> Series) -> Series {
        made.withLock { made in
            if let found = made[key] { return found }
            let series = make()
            made[key] = series
            return series
        }
    }
}

extension PrometheusCollectorRegistry {
    /// A counter named `name` exactly, with its HELP text.
    func counter(name: String, labels: [(String, String)] = [], help: String) -> Counter {
        makeCounter(descriptor: MetricNameDescriptor(metricName: name, unitName: "", helpText: help), labels: labels)
    }

    /// A gauge named `name` exactly, with its HELP text.
    func gauge(name: String, labels: [(String, String)] = [], help: String) -> Gauge {
        makeGauge(descriptor: MetricNameDescriptor(metricName: name, unitName: "", helpText: help), labels: labels)
    }

    /// A histogram of durations named `name` exactly, with its HELP text.
    func durationHistogram(name: String, labels: [(String, String)] = [], buckets: [Duration], help: String) -> DurationHistogram {
        makeDurationHistogram(
            descriptor: MetricNameDescriptor(metricName: name, unitName: "", helpText: help), labels: labels, buckets: buckets)
    }
}
