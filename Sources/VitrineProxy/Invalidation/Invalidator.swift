import NIOCore
import VitrineCore

/// Where every purge goes: the admin API, writes passing through, the Postgres change feed and
/// purges fanned out by other nodes. It purges this node's L1 at once, then the shared tier,
/// which publishes the purge to every other node.
final class Invalidator: Sendable {
    private let store: ResponseStore
    private let router: Router
    private let stats: ProxyStats
    private let metrics: ProxyMetrics
    /// The shared tier, which also fans purges out to the other nodes.
    let tier: (any SharedTier)?
    /// Precomputed listings: a purge marks the ones it touches for recompute.
    private let listings: Listings?

    init(
        store: ResponseStore, router: Router, stats: ProxyStats, metrics: ProxyMetrics, tier: (any SharedTier)? = nil,
        listings: Listings? = nil
    ) {
        self.store = store
        self.listings = listings
        self.router = router
        self.tier = tier
        self.stats = stats
        self.metrics = metrics
    }

    /// Purges this node's L1 at once, then the shared tier and every other node (through the
    /// tier's fan-out); the future completes when the tier has it (at once without a tier).
    ///
    /// L1 is purged again once the tier has the purge: in between, a miss in L1 may have been
    /// filled from the tier's old entry, and nothing else would ever remove it.
    ///
    /// Listings are told once the tier has the purge: a recompute begun before could read the
    /// tier's old entry, and one begun after can start at once.
    @discardableResult
    func purge(_ request: PurgeRequest, on loop: (any EventLoop)? = nil) -> (PurgeResult, EventLoopFuture<Void>?) {
        guard let tier, let loop else { return (purgeLocally(request), nil) }
        let result = purgeLocally(request, recomputeListings: false)
        let keys = request.keys.compactMap { primaryKey($0) }
        let implicitTags = keys.map { sharedTierKeyTag($0) } + (request.everything ? [sharedTierEverythingTag] : [])
        let shared = tier.purge(request, keys: keys, implicitTags: implicitTags, on: loop).always { _ in
            self.purgeLocally(request, counted: false)
        }
        return (result, shared)
    }

    /// A purge another node published: this node's L1 only.
    func applyRemote(_ request: PurgeRequest) {
        stats.increment(.remotePurges)
        purgeLocally(request)
    }

    private func primaryKey(_ key: String) -> CacheKey? {
        guard let target = Self.requestTarget(key) else { return nil }
        return router.route(for: target)?.key(target: target, host: Self.host(key)) ?? CacheKey(target)
    }

    @discardableResult
    private func purgeLocally(_ request: PurgeRequest, counted: Bool = true, recomputeListings: Bool = true) -> PurgeResult {
        let mode: PurgeMode = request.soft ? .soft : .hard
        var result = PurgeResult()
        if recomputeListings { listings?.invalidate(request, keys: request.keys.compactMap { primaryKey($0) }) }
        if request.everything { result.purged += store.purgeAll(mode: mode) }
        for tag in request.tags where !tag.isEmpty {
            result.purged += store.purge(tag: tag, mode: mode)
            result.tags += 1
        }
        for key in request.keys {
            // The key as the route makes it (sorted query, tracking parameters dropped), and every
            // variant stored under it (secondary keys carry the primary key as a tag).
            guard let cacheKey = primaryKey(key) else { continue }
            result.purged += store.purge(key: cacheKey, mode: mode)
            result.purged += store.purge(tag: VaryKey.primaryTag(cacheKey), mode: mode)
            result.keys += 1
        }
        for prefix in request.prefixes where !prefix.isEmpty {
            result.purged += store.purge(prefix: prefix, mode: mode)
            result.prefixes += 1
        }
        if counted {
            stats.increment(.purges)
            stats.increment(.purgedEntries, by: result.purged)
            metrics.purges.increment()
        }
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
