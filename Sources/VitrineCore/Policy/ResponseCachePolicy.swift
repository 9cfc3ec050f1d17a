/// Decides whether a shared cache may store a response (RFC 9111 §3), how long it is fresh
/// (§4.2.1: `s-maxage` over `max-age` over `Expires`), its age (§4.2.3), and how long it may be
/// served stale (RFC 5861). Targeted fields for this cache, `CDN-Cache-Control` (RFC 9213) and
/// then `Surrogate-Control`, take the place of `Cache-Control` when present.
public struct ResponseCachePolicy: Sendable {
    /// Status codes cacheable by default (RFC 9110 §15.1), less 206: partial content is never stored.
    public static let heuristicallyCacheable: Set<Int> = [200, 203, 204, 300, 301, 308, 404, 405, 410, 414, 501]
    /// Statuses cached for at most `negativeTTL`.
    public static let negative: Set<Int> = [404, 410]
    /// Targeted cache-control fields, read by this cache and never forwarded to clients.
    public static let targetedFields: Set<String> = ["cdn-cache-control", "surrogate-control"]

    /// The TTL for responses without explicit freshness (the configured heuristic); nil: such
    /// responses are not stored.
    public var defaultTTL: Duration?
    /// Stale-while-revalidate and stale-if-error for responses that give neither.
    public var grace: Duration
    /// The longest a 404 or 410 is cached.
    public var negativeTTL: Duration
    /// How long past expiry a response with validators is kept to be revalidated.
    public var keep: Duration

    public init(defaultTTL: Duration?, grace: Duration = .zero, negativeTTL: Duration = .seconds(10), keep: Duration = .zero) {
        self.defaultTTL = defaultTTL
        self.grace = grace
        self.negativeTTL = negativeTTL
        self.keep = keep
    }

    /// - Parameters:
    ///   - status: the response status code.
    ///   - headers: the response header fields, names in any case.
    ///   - requestHadAuthorization: the request carried `Authorization` (§3.5).
    ///   - timing: when the exchange happened; nil treats the response as just received.
    public func decide(
        status: Int,
        headers: [(name: String, value: String)],
        requestHadAuthorization: Bool = false,
        timing: ResponseTiming? = nil
    ) -> StorageDecision {
        var cacheControl: [String] = []
        var cdnCacheControl: [String] = []
        var surrogateControl: [String] = []
        var varyFields: [String] = []
        var ageValue = 0
        var dateValue: Int?
        var expiresValue: String?
        var hasValidators = false
        for (name, value) in headers {
            switch name.lowercased() {
            case "cache-control": cacheControl.append(value)
            case "cdn-cache-control": cdnCacheControl.append(value)
            case "surrogate-control": surrogateControl.append(value)
            case "set-cookie": return .doNotStore(reason: "set-cookie")
            case "vary":
                for field in value.split(separator: ",") {
                    let name = field.trimmingSpaces().lowercased()
                    if name == "*" { return .doNotStore(reason: "vary-star") }
                    if !name.isEmpty && !varyFields.contains(name) { varyFields.append(name) }
                }
            case "age": ageValue = DeltaSeconds.parse(value.trimmingCharacters()) ?? 0
            case "date": dateValue = HTTPDate.parse(value)
            case "expires": expiresValue = value
            case "etag", "last-modified": hasValidators = true
            default: continue
            }
        }
        let general = CacheControl(parsing: cacheControl)
        let targeted: CacheControl? =
            !cdnCacheControl.isEmpty
            ? CacheControl(parsing: cdnCacheControl) : !surrogateControl.isEmpty ? CacheControl(parsing: surrogateControl) : nil
        let directives = targeted ?? general

        if directives.noStore { return .doNotStore(reason: "no-store") }
        if directives.isPrivate { return .doNotStore(reason: "private") }
        if requestHadAuthorization && !(general.isPublic || general.mustRevalidate || general.sharedMaxAge != nil) {
            return .doNotStore(reason: "authorization")
        }
        if status >= 500 && status != 501 { return .doNotStore(reason: "status") }
        if status == 206 { return .doNotStore(reason: "partial") }

        let now = timing?.responseTime
        var lifetime: Int?
        if let explicit = directives.sharedMaxAge ?? directives.maxAge {
            lifetime = explicit
        } else if targeted == nil, let expiresValue {
            // An invalid Expires means "already expired" (RFC 9111 §5.3).
            if let expires = HTTPDate.parse(expiresValue) { lifetime = max(0, expires - (dateValue ?? now ?? expires)) } else { lifetime = 0 }
        } else if Self.heuristicallyCacheable.contains(status), let defaultTTL {
            lifetime = Int(defaultTTL.components.seconds)
        }
        if Self.negative.contains(status) {
            lifetime = min(lifetime ?? Int.max, Int(negativeTTL.components.seconds))
        }
        // No lifetime is longer than RFC 9111's 2^31 seconds, however far away an Expires is.
        lifetime = lifetime.map { min($0, DeltaSeconds.maximum) }
        guard var freshFor = lifetime else {
            return .doNotStore(reason: directives.noCache ? "no-cache" : "no-freshness")
        }
        let initialAge = timing?.correctedInitialAge(ageValue: ageValue, dateValue: dateValue) ?? max(ageValue, 0)
        freshFor = max(0, freshFor - initialAge)
        // `no-cache`: stored, but revalidated before every use.
        if directives.noCache { freshFor = 0 }

        var plan = StoragePlan(ttl: .seconds(freshFor), initialAge: initialAge)
        plan.varyFields = varyFields
        plan.mustRevalidate = directives.mustRevalidate || directives.proxyRevalidate || directives.sharedMaxAge != nil
        if !plan.mustRevalidate {
            let givesStaleDirectives = directives.staleWhileRevalidate != nil || directives.staleIfError != nil
            plan.staleWhileRevalidate = directives.staleWhileRevalidate.map { .seconds($0) } ?? (givesStaleDirectives ? .zero : grace)
            plan.staleIfError = directives.staleIfError.map { .seconds($0) } ?? (givesStaleDirectives ? .zero : grace)
        }
        if hasValidators { plan.keep = keep }
        if freshFor == 0 && plan.retention == .zero {
            return .doNotStore(reason: directives.noCache ? "no-cache" : "expired")
        }
        return .store(plan)
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
