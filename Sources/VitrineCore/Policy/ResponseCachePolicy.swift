/// Decides whether a shared cache may store a response (RFC 9111 §3) and how long it is fresh
/// (§4.2.1): `s-maxage` over `max-age`, minus the `Age` the response already has; the route's
/// default TTL only where the origin gave no explicit freshness.
public struct ResponseCachePolicy: Sendable {
    /// Status codes that are cacheable by default (RFC 9110 §15.1), less 206: partial content is
    /// never stored here.
    public static let heuristicallyCacheable: Set<Int> = [200, 203, 204, 300, 301, 308, 404, 405, 410, 414, 501]

    /// The route's TTL for responses without explicit freshness; nil: such responses are not stored.
    public var defaultTTL: Duration?
    /// How long past expiry entries are kept for stale serving.
    public var grace: Duration

    public init(defaultTTL: Duration?, grace: Duration = .zero) {
        self.defaultTTL = defaultTTL
        self.grace = grace
    }

    /// - Parameters:
    ///   - status: the response status code.
    ///   - headers: the response header fields, names in any case.
    ///   - requestHadAuthorization: the request carried `Authorization` (§3.5).
    public func decide(
        status: Int,
        headers: some Sequence<(name: String, value: String)>,
        requestHadAuthorization: Bool = false
    ) -> StorageDecision {
        var cacheControlValues: [String] = []
        var age = 0
        for (name, value) in headers {
            if name.caseInsensitiveEquals("cache-control") {
                cacheControlValues.append(value)
            } else if name.caseInsensitiveEquals("set-cookie") {
                return .doNotStore(reason: "set-cookie")
            } else if name.caseInsensitiveEquals("vary") {
                // Secondary keys are not implemented yet: a varying response is never shared.
                return .doNotStore(reason: "vary")
            } else if name.caseInsensitiveEquals("age") {
                age = Int(value.trimmingCharacters()) ?? 0
            }
        }
        let directives = CacheControl(parsing: cacheControlValues)
        if directives.noStore { return .doNotStore(reason: "no-store") }
        if directives.isPrivate { return .doNotStore(reason: "private") }
        if requestHadAuthorization
            && !(directives.isPublic || directives.mustRevalidate || directives.sharedMaxAge != nil)
        {
            return .doNotStore(reason: "authorization")
        }
        if status >= 500 && status != 501 { return .doNotStore(reason: "status") }
        if status == 206 { return .doNotStore(reason: "partial") }

        let lifetime: Int
        if let explicit = directives.sharedMaxAge ?? directives.maxAge {
            lifetime = explicit
        } else if Self.heuristicallyCacheable.contains(status), let defaultTTL {
            return .store(ttl: defaultTTL, grace: grace)
        } else {
            return .doNotStore(reason: "no-freshness")
        }
        // `no-cache` means revalidate before every use: with no revalidation yet, not stored.
        if directives.noCache { return .doNotStore(reason: "no-cache") }
        let remaining = lifetime - max(age, 0)
        guard remaining > 0 else { return .doNotStore(reason: "expired") }
        return .store(ttl: .seconds(remaining), grace: grace)
    }
}

extension String {
    /// ASCII case-insensitive equality, for header names.
    public func caseInsensitiveEquals(_ other: String) -> Bool {
        let lhs = utf8
        let rhs = other.utf8
        guard lhs.count == rhs.count else { return false }
        for (a, b) in zip(lhs, rhs) where a != b {
            guard (a | 0x20) == (b | 0x20), (a | 0x20) >= 0x61, (a | 0x20) <= 0x7a else { return false }
        }
        return true
    }

    func trimmingCharacters() -> Substring {
        self[...].trimmingSpaces()
    }
}
