/// Whether a stored entry past its freshness may still be served (RFC 5861): while one refresh
/// runs (`stale-while-revalidate`), or in place of an origin error (`stale-if-error`).
public struct StaleWindows: Equatable, Sendable {
    public var whileRevalidate: Bool
    public var ifError: Bool

    public init(whileRevalidate: Bool, ifError: Bool) {
        self.whileRevalidate = whileRevalidate
        self.ifError = ifError
    }
}

extension CacheHit {
    /// Where this hit stands against its windows (nanoseconds past freshness each allows).
    public func staleWindows(whileRevalidate: UInt64, ifError: UInt64) -> StaleWindows {
        let pastFreshness = UInt64(max(0, -remainingNanoseconds))
        return StaleWindows(whileRevalidate: pastFreshness < whileRevalidate, ifError: pastFreshness < ifError)
    }
}
