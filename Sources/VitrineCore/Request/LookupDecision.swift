/// lookup → hit / stale / miss, decided from what L1 found and what the request asks: the step
/// after receive, as a plain value. Generic over the hit it hands back, so that it is tested
/// with plain values.
public enum LookupDecision<Hit> {
    /// Deliver the fresh entry.
    case hit(Hit)
    /// Deliver the stale entry now and refresh it once in the background.
    case staleWhileRevalidate(Hit)
    /// `only-if-cached` and nothing servable: 504.
    case notCached
    /// Fetch for this request alone (a `HEAD` miss: there is no body to store or to share).
    case fetchAlone
    /// Miss: join the key's collapsed fetch (or lead it); the leader asks the shared tier first
    /// unless `consultSharedTier` is false (the client asked for the origin).
    case collapse(consultSharedTier: Bool)

    /// What L1 found.
    public enum Found {
        case fresh(Hit)
        case stale(Hit, StaleWindows)
        case miss
    }

    /// - Parameters:
    ///   - wantsOrigin: the request asked for validation (`no-cache`, `max-age=0`) and the route
    ///     honours it (`client_no_cache: revalidate`).
    ///   - onlyIfCached: the request said `only-if-cached`.
    ///   - isGET: a `GET` (a `HEAD` is forwarded as a `HEAD`).
    public static func decide(_ found: Found, wantsOrigin: Bool, onlyIfCached: Bool, isGET: Bool) -> LookupDecision {
        switch found {
        case .fresh(let hit) where !wantsOrigin:
            return .hit(hit)
        case .stale(let hit, let windows) where !wantsOrigin && windows.whileRevalidate:
            return .staleWhileRevalidate(hit)
        default:
            break
        }
        if onlyIfCached { return .notCached }
        guard isGET else { return .fetchAlone }
        return .collapse(consultSharedTier: !wantsOrigin)
    }
}

extension LookupDecision: Equatable where Hit: Equatable {}
extension LookupDecision: Sendable where Hit: Sendable {}
extension LookupDecision.Found: Sendable where Hit: Sendable {}
