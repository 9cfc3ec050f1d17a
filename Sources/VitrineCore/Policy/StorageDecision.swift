/// How a storable response is kept: fresh for `ttl`, then kept for stale serving and revalidation.
public struct StoragePlan: Sendable, Equatable {
    /// Freshness left when stored: the lifetime minus the corrected initial age. Zero for responses
    /// that must be revalidated before every use (`no-cache`).
    public var ttl: Duration
    /// Seconds of age the response had on arrival (RFC 9111 §4.2.3's corrected initial age).
    public var initialAge: Int
    /// May be served stale while one background refresh runs (RFC 5861).
    public var staleWhileRevalidate: Duration = .zero
    /// May be served stale when the origin fails or answers 5xx (RFC 5861).
    public var staleIfError: Duration = .zero
    /// Kept this long past expiry to be revalidated with its validators.
    public var keep: Duration = .zero
    /// Stale may never be served (`must-revalidate`, `proxy-revalidate`, `s-maxage`).
    public var mustRevalidate = false
    /// Lower-cased request fields the response varies on (secondary key), empty for none.
    public var varyFields: [String] = []

    public init(ttl: Duration, initialAge: Int = 0) {
        self.ttl = ttl
        self.initialAge = initialAge
    }

    /// How long past expiry the entry is kept at all.
    public var retention: Duration { max(staleWhileRevalidate, staleIfError, keep) }
}

/// Whether a response may be stored by a shared cache, and how.
public enum StorageDecision: Sendable, Equatable {
    case store(StoragePlan)
    /// Do not store it; `reason` is for logs and `Cache-Status`'s `detail`.
    case doNotStore(reason: String)

    public var plan: StoragePlan? {
        if case .store(let plan) = self { return plan }
        return nil
    }
}
