/// l2-wait → hit / stale / restart / fetch: what the leader of a miss does with the shared tier's
/// answer, as a plain value. Generic over the response and the stale hit it hands back, so that
/// it is tested with plain values.
public enum SharedTierDecision<Response, Hit> {
    /// Deliver the response L2 had (now in L1 too).
    case hit(Response)
    /// L2 soft-purged the entry and it is within stale-while-revalidate: deliver it stale and
    /// refresh it once in the background.
    case staleAndRefresh(Hit)
    /// L2 says the URL varies: look up again, for this request's variant (a restart).
    case restartForVariant
    /// Another node holds the fetch lease: deliver the stale entry this node has.
    case staleWhileLeased(Hit)
    /// Another node holds the fetch lease and nothing stale may stand in: ask again shortly.
    case waitForLease
    /// Fetch from the origin (with the lease when the tier gave it).
    case fetch

    /// What the shared tier had for the key.
    public enum Entry {
        case absent
        /// A `Vary` marker: the URL's variants are stored under their own keys.
        case varyMarker
        /// A response with freshness left.
        case fresh(Response)
        /// A response with no freshness left (kept for revalidation).
        case exhausted
        /// Soft-purged, and kept in L1 as stale (nil when L1 did not keep it).
        case softPurged(kept: (Hit, StaleWindows)?)
    }

    /// - Parameters:
    ///   - mayFetch: the tier gave this node the lease (or no lease was asked).
    ///   - stale: the stale entry this node holds for the key, if any.
    ///   - leaseWaitLeft: waiting for the lease holder's answer has time left.
    public static func decide(_ entry: Entry, mayFetch: Bool, stale: (Hit, StaleWindows)?, leaseWaitLeft: Bool) -> SharedTierDecision {
        switch entry {
        case .softPurged(let kept?) where kept.1.whileRevalidate: return .staleAndRefresh(kept.0)
        case .varyMarker: return .restartForVariant
        case .fresh(let response): return .hit(response)
        case .absent, .exhausted, .softPurged: break
        }
        if !mayFetch {
            if let (hit, windows) = stale, windows.whileRevalidate || windows.ifError { return .staleWhileLeased(hit) }
            if leaseWaitLeft { return .waitForLease }
        }
        return .fetch
    }
}

extension SharedTierDecision: Equatable where Response: Equatable, Hit: Equatable {}
extension SharedTierDecision: Sendable where Response: Sendable, Hit: Sendable {}
extension SharedTierDecision.Entry: Sendable where Response: Sendable, Hit: Sendable {}
