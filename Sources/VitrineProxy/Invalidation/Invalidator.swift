import VitrineCore

/// Where every purge goes: the admin API, writes passing through and (later) the Postgres change
/// feed and the Redis fan-out all call `purge`. Today it purges this node's L1; the shared Redis
/// tier and fan-out to other nodes plug in here.
final class Invalidator: Sendable {
    private let store: ResponseStore
    private let router: Router
    private let stats: ProxyStats
    private let metrics: ProxyMetrics

    init(store: ResponseStore, router: Router, stats: ProxyStats, metrics: ProxyMetrics) {
        self.store = store
        self.router = router
        self.stats = stats
        self.metrics = metrics
    }

    @discardableResult
    func purge(_ request: PurgeRequest) -> PurgeResult {
        let mode: PurgeMode = request.soft ? .soft : .hard
        var result = PurgeResult()
        for tag in request.tags where !tag.isEmpty {
            result.purged += store.purge(tag: tag, mode: mode)
            result.tags += 1
        }
        for key in request.keys {
            guard let target = Self.requestTarget(key) else { continue }
            // The key as the route makes it (sorted query, tracking parameters dropped), and every
            // variant stored under it (secondary keys carry the primary key as a tag).
            let cacheKey = router.route(for: target)?.key(target: target, host: Self.host(key)) ?? CacheKey(target)
            result.purged += store.purge(key: cacheKey, mode: mode)
            result.purged += store.purge(tag: VaryKey.primaryTag(cacheKey), mode: mode)
            result.keys += 1
        }
        for prefix in request.prefixes where !prefix.isEmpty {
            result.purged += store.purge(prefix: prefix, mode: mode)
            result.prefixes += 1
        }
        stats.increment(.purges)
        stats.increment(.purgedEntries, by: result.purged)
        metrics.purges.increment()
        return result
    }

    /// The host of an absolute URL, nil for a bare target.
    static func host(_ key: String) -> String? {
        guard let scheme = key.range(of: "://") else { return nil }
        return String(key[scheme.upperBound...].prefix { $0 != "/" })
    }

    /// `/path?q` as is; `http://host/path?q` as `/path?q`.
    static func requestTarget(_ key: String) -> String? {
        if key.hasPrefix("/") { return key }
        guard let scheme = key.range(of: "://") else { return nil }
        let afterScheme = key[scheme.upperBound...]
        guard let slash = afterScheme.firstIndex(of: "/") else { return "/" }
        return String(afterScheme[slash...])
    }
}
