import NIOCore
import VitrineConfig
import VitrineCore

/// A configured route, resolved: its origin by index and its storage policy.
struct Route: Sendable {
    let prefix: String
    /// The route's origin, with its connection pools.
    let origin: OriginPools
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

/// Maps a request path to the route with the longest matching prefix. A reload builds a new one
/// and puts it in place whole (`Reloadable`).
package struct Router: Sendable {
    /// Routes, longest prefix first.
    let routes: [Route]
    /// How many routes there are (for the start-up log).
    package var routeCount: Int { routes.count }
    /// Every origin's pools, by name.
    let origins: [String: OriginPools]

    /// - Parameter previous: the router being replaced: origins whose settings did not change
    ///   keep its pools and their open connections.
    package init(configuration: VitrineConfiguration, group: any EventLoopGroup, reusing previous: Router? = nil) {
        var origins: [String: OriginPools] = [:]
        for (name, settings) in configuration.origins {
            if let kept = previous?.origins[name], kept.settings == settings,
                kept.maxHeaderBytes == configuration.limits.maxOriginHeaderBytes
            {
                origins[name] = kept
            } else {
                origins[name] = OriginPools(
                    name: name, settings: settings, maxHeaderBytes: configuration.limits.maxOriginHeaderBytes, group: group)
            }
        }
        self.origins = origins
        // `validate()` has checked that every route names a defined origin.
        self.routes = configuration.routes
            .sorted { $0.prefix.utf8.count > $1.prefix.utf8.count }
            .compactMap { settings in
                guard let origin = origins[settings.origin] else { return nil }
                return Route(
                    prefix: settings.prefix,
                    origin: origin,
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

    /// The `https://` origins whose TLS client cannot be made, by name, with why (sorted):
    /// a node does not start, nor a reload apply, with one.
    package var originTLSFailures: [(origin: String, reason: String)] {
        origins.values.compactMap { pools in pools.tlsFailure.map { (pools.name, $0) } }.sorted { $0.origin < $1.origin }
    }

    /// Origins `self` has that `next` does not use (their idle connections can be closed).
    package func originsDropped(by next: Router) -> [OriginPools] {
        origins.values.filter { pools in next.origins[pools.name] !== pools }
    }

    /// Closes every origin's idle connections.
    package func closeIdleConnections() {
        for pools in origins.values { pools.closeIdle() }
    }

    /// The route for a request target (path and query).
    func route(for target: String) -> Route? {
        routes.first { target.hasPrefix($0.prefix) }
    }
}
