import NIOCore
import NIOHTTP1
import VitrineCore

/// What listings need of the proxy, and nothing more: routes, fetch tokens, the shared tier
/// (when this node may read it) and origin fetches through the cache's own fetch path. Given to
/// `Listings` when it is made, so that listings never hold the proxy's context.
package struct ListingFetcher: Sendable {
    private let proxy: ProxyContext

    package init(proxy: ProxyContext) {
        self.proxy = proxy
    }

    func route(for target: String) -> Route? {
        proxy.router.route(for: target)
    }

    func fetchToken() -> FetchToken {
        proxy.store.fetchToken()
    }

    /// The shared tier's answer for `key`, taking its fetch lease when it is missing; nil when
    /// this node may not read the tier (`ProxyContext.readableTier`).
    func lookUpShared(_ key: CacheKey, on loop: any EventLoop) -> EventLoopFuture<SharedTierLookup?>? {
        proxy.readableTier?.lookup(key, lease: proxy.fetchLease, on: loop)
    }

    /// Fetches `target` as a cacheable miss: stored in L1 (and in the shared tier when
    /// `sharedSequence`, from a lookup, is given); `onEnd` is told how it ended.
    func fetch(
        _ target: String, route: Route, token: FetchToken, sharedSequence: Int64?, on loop: any EventLoop,
        onEnd: @escaping (FetchOutcome) -> Void
    ) {
        let key = route.key(target: target, host: nil)
        var fetch = MissFetch(key: key, collapseKey: key, token: token, stale: nil, leader: false)
        fetch.sharedSequence = sharedSequence
        let request = HTTPRequestHead(version: .http1_1, method: .GET, uri: target, headers: ["Host": "vitrine-listings"])
        let exchange = ForwardExchange(
            proxy: proxy, client: nil, forwarding: .direct("vitrine-listings"), requestID: nil, request: request, route: route, mode: .miss(fetch),
            pool: route.origin.pool(on: loop), keepAlive: true, requestComplete: true, onEnd: onEnd)
        exchange.start()
    }
}
