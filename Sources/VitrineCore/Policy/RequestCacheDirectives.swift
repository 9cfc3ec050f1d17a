/// The cache directives of a request (RFC 9111 §5.2.1) that a shared cache may honour.
public struct RequestCacheDirectives: Sendable, Equatable {
    /// `no-cache`, `max-age=0` or `Pragma: no-cache`: the client asks for a validated answer.
    public var wantsValidation = false
    /// `only-if-cached`: answer from the cache or with 504.
    public var onlyIfCached = false
    /// `no-store`: do not store what this request fetches.
    public var noStore = false

    public init() {}

    public init(cacheControl: [String], pragma: [String]) {
        let directives = CacheControl(parsing: cacheControl)
        wantsValidation = directives.noCache || directives.maxAge == 0
            || (cacheControl.isEmpty && pragma.contains { $0.lowercased().contains("no-cache") })
        noStore = directives.noStore
        onlyIfCached = cacheControl.contains { $0.lowercased().contains("only-if-cached") }
    }
}

/// What a route does with a client's request for validation (`no-cache`, `max-age=0`).
///
/// The default is `ignore`: storefront browsers send `no-cache` on every reload, and letting them
/// reach the origin would undo the shield the cache exists for.
public enum ClientRevalidationPolicy: String, Sendable, Codable, CaseIterable {
    /// Answer from the cache as usual.
    case ignore
    /// Refetch from the origin and store the answer.
    case revalidate
}
