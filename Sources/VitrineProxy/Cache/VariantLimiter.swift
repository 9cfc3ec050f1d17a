import Synchronization
import VitrineCore

/// How many variants of each URL are stored (`vary.max_variants`): a response that varies on a
/// field with endless values (`User-Agent`, `Cookie`) cannot fill the cache with copies of one
/// page. Remembers, per primary key, the variants stored within their lifetime.
///
/// Bounded: past `capacity` URLs it forgets them all (a cap forgotten lets a few more variants
/// in for a while, never unbounded memory).
final class VariantLimiter: Sendable {
    private let state = Mutex<[CacheKey: [String: UInt64]]>([:])
    private let capacity: Int

    init(capacity: Int = 100_000) {
        self.capacity = capacity
    }

    /// Whether `variant` of `primary` may be stored: it is already one of them, or there is room
    /// for one more among those stored within `window` of `now` (monotonic nanoseconds).
    func admit(_ primary: CacheKey, variant: String, limit: Int, window: Duration, now: UInt64) -> Bool {
        let until = now &+ window.nanoseconds
        return state.withLock { state in
            var variants = state[primary] ?? [:]
            variants = variants.filter { $0.value > now }
            defer {
                if state.count >= capacity && state[primary] == nil { state.removeAll(keepingCapacity: true) }
                state[primary] = variants.isEmpty ? nil : variants
            }
            if variants[variant] != nil || variants.count < limit {
                variants[variant] = max(variants[variant] ?? 0, until)
                return true
            }
            return false
        }
    }
}
