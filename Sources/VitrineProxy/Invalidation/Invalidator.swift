import VitrineCore

/// Where every purge goes: the admin API, writes passing through and (later) the Postgres change
/// feed and the Redis fan-out all call `purge`. Today it purges this node's L1; the shared Redis
/// tier and fan-out to other nodes plug in here.
final class Invalidator: Sendable {
    private let store: ResponseStore
    private let stats: ProxyStats
    private let metrics: ProxyMetrics

    init(store: ResponseStore, stats: ProxyStats, metrics: ProxyMetrics) {
        self.store = store
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
            result.purged += store.purge(key: CacheKey(target), mode: mode)
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

    /// `/path?q` as is; `http://host/path?q` as `/path?q`.
    static func requestTarget(_ key: String) -> String? {
        if key.hasPrefix("/") { return key }
        guard let scheme = key.range(of: "://") else { return nil }
        let afterScheme = key[scheme.upperBound...]
        guard let slash = afterScheme.firstIndex(of: "/") else { return "/" }
        return String(afterScheme[slash...])
    }
}
