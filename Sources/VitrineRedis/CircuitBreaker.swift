/// When to stop asking Redis: after `threshold` failures in a row the breaker opens for a backoff
/// that doubles up to `maxBackoff`; while open, calls fail at once. The first success closes it.
/// A plain value, confined to one event loop by its owner.
public struct CircuitBreaker: Sendable {
    public enum State: Sendable, Equatable {
        case closed
        /// Failing fast until the deadline (monotonic nanoseconds).
        case open(until: UInt64)
    }

    public let threshold: Int
    public let baseBackoff: UInt64
    public let maxBackoff: UInt64
    public private(set) var state = State.closed
    public private(set) var consecutiveFailures = 0
    private var openings = 0

    public init(threshold: Int = 3, baseBackoff: Duration = .milliseconds(50), maxBackoff: Duration = .seconds(2)) {
        self.threshold = threshold
        self.baseBackoff = UInt64(baseBackoff.components.seconds) * 1_000_000_000 + UInt64(baseBackoff.components.attoseconds / 1_000_000_000)
        self.maxBackoff = UInt64(maxBackoff.components.seconds) * 1_000_000_000 + UInt64(maxBackoff.components.attoseconds / 1_000_000_000)
    }

    /// Whether a call may go to Redis now.
    public func allows(now: UInt64) -> Bool {
        switch state {
        case .closed: return true
        case .open(let until): return now >= until
        }
    }

    public mutating func recordSuccess() {
        consecutiveFailures = 0
        openings = 0
        state = .closed
    }

    /// Returns true when this failure opened the breaker.
    @discardableResult
    public mutating func recordFailure(now: UInt64) -> Bool {
        consecutiveFailures += 1
        guard consecutiveFailures >= threshold else { return false }
        let backoff = min(maxBackoff, baseBackoff << UInt64(min(openings, 20)))
        openings += 1
        state = .open(until: now + backoff)
        return true
    }
}
