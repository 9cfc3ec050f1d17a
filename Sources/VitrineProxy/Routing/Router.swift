import VitrineConfig
import VitrineCore

/// A configured route, resolved: its origin by index and its storage policy.
struct Route: Sendable {
    let prefix: String
    let originName: String
    /// Index of the origin in `Router.origins`.
    let originIndex: Int
    let cacheable: Bool
    let policy: ResponseCachePolicy
    let clientNoCache: ClientRevalidationPolicy
    let normalizer: CacheKeyNormalizer
    /// Store a gzip copy of compressible responses.
    let compress: Bool
    /// Request fields (lower-cased) forwarded on fetches that may be stored.
    let forwardHeaders: Set<String>
    /// Which request cookies make a request personal (passed).
    let cookies: CookiePolicy
    /// `Set-Cookie` is removed from answers that may be stored.
    let stripSetCookie: Bool
    /// The cap on variants per URL, and the languages `Accept-Language` is reduced to.
    let vary: VarySettings

    /// The cache key of a request target on this route.
    func key(target: String, host: String?) -> CacheKey {
        normalizer.key(target: target, host: host)
    }
}

/// Maps a request path to the route with the longest matching prefix.
package struct Router: Sendable {
    /// Routes, longest prefix first.
    let routes: [Route]
    /// How many routes there are (for the start-up log).
    package var routeCount: Int { routes.count }
    /// Origin names, in the order their pools are indexed.
    let origins: [String]

    package init(configuration: VitrineConfiguration) {
        let originNames = configuration.origins.keys.sorted()
        self.origins = originNames
        self.routes = configuration.routes
            .sorted { $0.prefix.utf8.count > $1.prefix.utf8.count }
            .map { settings in
                Route(
                    prefix: settings.prefix,
                    originName: settings.origin,
                    originIndex: originNames.firstIndex(of: settings.origin)!,
                    cacheable: settings.cacheable,
                    policy: ResponseCachePolicy(
                        defaultTTL: settings.defaultTTL, grace: settings.grace, negativeTTL: settings.negativeTTL,
                        keep: settings.keep),
                    clientNoCache: settings.clientNoCache,
                    normalizer: settings.key,
                    compress: settings.compress,
                    forwardHeaders: Set(settings.forwardHeaders),
                    cookies: settings.cookies,
                    stripSetCookie: settings.stripSetCookie,
                    vary: settings.vary
                )
            }
    }

    /// The route for a request target (path and query).
    func route(for target: String) -> Route? {
        routes.first { target.hasPrefix($0.prefix) }
    }
}
