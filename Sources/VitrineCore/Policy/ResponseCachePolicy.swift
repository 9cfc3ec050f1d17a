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
    /// The final status codes HTTP defines (RFC 9110 §15), which this cache understands for
    /// `must-understand`: their meaning does not depend on anything it does not know.
    public static let understood: Set<Int> = [
        200, 201, 202, 203, 204, 205, 300, 301, 302, 303, 304, 305, 307, 308, 400, 401, 402, 403, 404, 405, 406, 407, 408,
        409, 410, 411, 412, 413, 414, 415, 416, 417, 421, 422, 426, 500, 501, 502, 503, 504, 505,
    ]

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
    ///   - requestNoStore: the request carried `Cache-Control: no-store` (§5.2.1.5).
    ///   - timing: when the exchange happened; nil treats the response as just received.
    public func decide(
        status: Int,
        headers: [(name: String, value: String)],
        requestNoStore: Bool = false,
        timing: ResponseTiming? = nil
    ) -> StorageDecision {
        var cacheControl: [String] = []
        var cdnCacheControl: [String] = []
        var surrogateControl: [String] = []
        var varyFields: [String] = []
        var ageLine: String?
        var dateValue: Int?
        var expiresValues: [String] = []
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
            // §5.1: the first line counts (and of a list, its first member).
            case "age": if ageLine == nil { ageLine = value }
            case "date": dateValue = HTTPDate.parse(value)
            case "expires": expiresValues.append(value)
            case "etag", "last-modified": hasValidators = true
            default: continue
            }
        }
        let general = CacheControl(parsing: cacheControl)
        // An invalid CDN-Cache-Control is ignored as a whole, as if absent (RFC 9213 §2.1).
        let targeted: CacheControl? =
            (cdnCacheControl.isEmpty ? nil : CDNCacheControl.parse(cdnCacheControl))
            ?? (surrogateControl.isEmpty ? nil : CacheControl(parsing: surrogateControl))
        let directives = targeted ?? general

        if requestNoStore { return .doNotStore(reason: "request-no-store") }
        if status < 200 { return .doNotStore(reason: "interim") }
        if directives.mustUnderstand {
            // §5.2.2.3: a status this cache does not understand is never stored; one it does
            // is stored whatever `no-store` says (no-store is the older caches' fallback).
            if !Self.understood.contains(status) { return .doNotStore(reason: "must-understand") }
        } else if directives.noStore {
            return .doNotStore(reason: "no-store")
        }
        if directives.isPrivate { return .doNotStore(reason: "private") }
        if status == 206 { return .doNotStore(reason: "partial") }
        if status == 304 { return .doNotStore(reason: "not-modified") }

        let now = timing?.responseTime
        var lifetime: Int?
        if let explicit = directives.sharedMaxAge ?? directives.maxAge {
            lifetime = explicit
        } else if targeted == nil, !expiresValues.isEmpty {
            // An invalid Expires means "already expired" (RFC 9111 §5.3); so does one repeated
            // (it is a singleton: which line would count?).
            if expiresValues.count == 1, let expires = HTTPDate.parse(expiresValues[0]) {
                lifetime = max(0, expires - (dateValue ?? now ?? expires))
            } else {
                lifetime = 0
            }
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
        // §5.1: of a list, the first member; a value that is not delta-seconds makes the
        // response stale (its age is unknown, so it cannot be known to be fresh).
        let ageMember = ageLine.map { line in line.split(separator: ",", omittingEmptySubsequences: false).first.map { $0.trimmingSpaces() } ?? "" }
        let ageValue = ageMember.flatMap { DeltaSeconds.parse($0) } ?? 0
        let initialAge = timing?.correctedInitialAge(ageValue: ageValue, dateValue: dateValue) ?? max(ageValue, 0)
        freshFor = max(0, freshFor - initialAge)
        if let ageMember, DeltaSeconds.parse(ageMember) == nil { freshFor = 0 }
        // `no-cache`: stored, but revalidated before every use.
        if directives.noCache { freshFor = 0 }

        var plan = StoragePlan(ttl: .seconds(freshFor), initialAge: initialAge)
        plan.varyFields = varyFields
        plan.mustRevalidate = directives.mustRevalidate || directives.proxyRevalidate || directives.sharedMaxAge != nil
        // An error stored for its explicit freshness is served while fresh, never stale.
        if !plan.mustRevalidate && status < 500 {
            let givesStaleDirectives = directives.staleWhileRevalidate != nil || directives.staleIfError != nil
            plan.staleWhileRevalidate = directives.staleWhileRevalidate.map { .seconds($0) } ?? (givesStaleDirectives ? .zero : grace)
            plan.staleIfError = directives.staleIfError.map { .seconds($0) } ?? (givesStaleDirectives ? .zero : grace)
        }
        if hasValidators && status < 500 { plan.keep = keep }
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
