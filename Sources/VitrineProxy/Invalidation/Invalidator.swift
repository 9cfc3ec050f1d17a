import Logging
import NIOCore
import Synchronization
import VitrineCore

/// Where every purge goes: the admin API, writes passing through, the Postgres change feed and
/// purges fanned out by other nodes. It purges this node's L1 at once, then the shared tier,
/// which publishes the purge to every other node.
package final class Invalidator: Sendable {
    private let store: ResponseStore
    /// The routes (a purged key is normalised by its route's rules).
    private let routes: Reloadable<Router>
    private let stats: ProxyStats
    private let metrics: ProxyMetrics
    /// The shared tier, which also fans purges out to the other nodes.
    let tier: (any SharedTier)?
    /// Told of every purge this node applies (listings mark the pages it touches for recompute).
    private let subscribers = Mutex<[@Sendable (PurgeRequest, [CacheKey]) -> Void]>([])
    /// Purges that did not reach the shared tier, delivered in order once it is back.
    let outbox = PurgeOutbox()
    /// Whether a delivery of the outbox is under way or scheduled.
    private let delivering = Atomic<Bool>(false)

    private let logger: Logger?

    package init(
        store: ResponseStore, routes: Reloadable<Router>, stats: ProxyStats, metrics: ProxyMetrics, tier: (any SharedTier)? = nil,
        logger: Logger? = nil
    ) {
        self.logger = logger
        self.store = store
        self.routes = routes
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
    /// Subscribers (listings) are told once the tier has the purge: a recompute begun before
    /// could read the tier's old entry, and one begun after can start at once.
    @discardableResult
    package func purge(_ request: PurgeRequest, on loop: (any EventLoop)? = nil) -> (PurgeResult, EventLoopFuture<Void>?) {
        guard let tier, let loop else { return (purgeLocally(request), nil) }
        let result = purgeLocally(request, notify: false)
        let shared = sharedPurge(request, tier: tier, on: loop).always { _ in
            self.purgeLocally(request, counted: false)
        }
        // Not delivered: kept, and delivered once the tier is back. Meanwhile this node does not
        // read L2 (it may still hold what was purged here).
        shared.whenFailure { _ in
            if !self.outbox.hold(request) {
                self.logger?.error("purge outbox overflowed: the fleet will be told to purge everything once Redis is back")
            }
            self.deliverHeld(tier: tier, on: loop)
        }
        return (result, shared)
    }

    private func sharedPurge(_ request: PurgeRequest, tier: any SharedTier, on loop: any EventLoop) -> EventLoopFuture<Void> {
        let keys = request.keys.compactMap { primaryKey($0) }
        let implicitTags = keys.map { sharedTierKeyTag($0) } + (request.everything ? [sharedTierEverythingTag] : [])
        return tier.purge(request, keys: keys, implicitTags: implicitTags, on: loop)
    }

    /// Delivers the outbox in order, retrying every 250 ms while the tier refuses.
    private func deliverHeld(tier: any SharedTier, on loop: any EventLoop) {
        guard delivering.compareExchange(expected: false, desired: true, ordering: .acquiringAndReleasing).exchanged else { return }
        deliverNext(tier: tier, on: loop)
    }

    private func deliverNext(tier: any SharedTier, on loop: any EventLoop) {
        guard let next = outbox.next() else {
            delivering.store(false, ordering: .releasing)
            // Held meanwhile by a purge that failed while this delivery was finishing.
            if outbox.next() != nil { deliverHeld(tier: tier, on: loop) }
            return
        }
        sharedPurge(next, tier: tier, on: loop).whenComplete { result in
            switch result {
            case .success:
                self.outbox.delivered()
                self.deliverNext(tier: tier, on: loop)
            case .failure:
                loop.scheduleTask(in: .milliseconds(250)) { self.deliverNext(tier: tier, on: loop) }
            }
        }
    }

    /// Calls `subscriber` with every purge this node applies (its own once the shared tier has
    /// it, other nodes' as they arrive) and the primary keys it names.
    package func onPurge(_ subscriber: @escaping @Sendable (PurgeRequest, [CacheKey]) -> Void) {
        subscribers.withLock { $0.append(subscriber) }
    }

    /// A purge another node published: this node's L1 only.
    package func applyRemote(_ request: PurgeRequest) {
        stats.increment(.remotePurges)
        purgeLocally(request)
    }

    private func primaryKey(_ key: String) -> CacheKey? {
        guard let target = Self.requestTarget(key) else { return nil }
        return routes.current.route(for: target)?.key(target: target, host: Self.host(key)) ?? CacheKey(target)
    }

    @discardableResult
    private func purgeLocally(_ request: PurgeRequest, counted: Bool = true, notify: Bool = true) -> PurgeResult {
        let mode: PurgeMode = request.soft ? .soft : .hard
        var result = PurgeResult()
        if notify {
            let subscribers = self.subscribers.withLock { $0 }
            if !subscribers.isEmpty {
                let keys = request.keys.compactMap { primaryKey($0) }
                for subscriber in subscribers { subscriber(request, keys) }
            }
        }
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
