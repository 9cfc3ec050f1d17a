extension VitrineConfiguration {
    /// What `vitrine demo` runs: the demo origin behind `/catalog/` and `/search/` (cached with
    /// 60 s and 30 s default TTLs) and its `/_origin/` stats passed through uncached. Mirrors
    /// `config/demo.yaml`.
    public static func demo(origin: OriginURL, port: Int, adminPort: Int, token: String) -> VitrineConfiguration {
        var configuration = VitrineConfiguration.singleOrigin(origin)
        configuration.origins = ["catalog": OriginSettings(url: origin), "search": OriginSettings(url: origin)]
        var catalog = RouteSettings(prefix: "/catalog/", origin: "catalog", defaultTTL: .seconds(60))
        var search = RouteSettings(prefix: "/search/", origin: "search", defaultTTL: .seconds(30))
        // A browser's analytics and consent cookies do not make a catalog read personal.
        catalog.cookies = .ignore(RouteSettings.analyticsCookies)
        search.cookies = .ignore(RouteSettings.analyticsCookies)
        configuration.routes = [catalog, search, RouteSettings(prefix: "/_origin/", origin: "catalog", cacheable: false)]
        configuration.listen = ListenAddress(host: "127.0.0.1", port: port)
        configuration.admin.listen = ListenAddress(host: "127.0.0.1", port: adminPort)
        configuration.admin.token = token
        configuration.listings = .demo
        // Ctrl-C on a demo stops it at once: no load balancer is waiting to notice.
        configuration.server.drainDelay = .zero
        return configuration
    }
}
