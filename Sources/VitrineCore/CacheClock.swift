#if canImport(Glibc)
import Glibc
#elseif canImport(Musl)
import Musl
#elseif canImport(Darwin)
import Darwin
#endif
import Synchronization

/// A source of monotonic time in nanoseconds. The store reads time only through this,
/// so tests drive expiry by advancing a `ManualClock` instead of sleeping.
public protocol CacheClock: Sendable {
    /// Monotonic nanoseconds since an arbitrary origin.
    func nanoseconds() -> UInt64
}

/// The process's monotonic clock (`CLOCK_MONOTONIC`).
public struct SystemClock: CacheClock {
    public init() {}

    public func nanoseconds() -> UInt64 {
        var spec = timespec()
        clock_gettime(CLOCK_MONOTONIC, &spec)
        return UInt64(spec.tv_sec) &* 1_000_000_000 &+ UInt64(spec.tv_nsec)
    }
}

/// A clock that moves only when told to; for tests.
public final class ManualClock: CacheClock {
    private let now: Atomic<UInt64>

    public init(startingAt nanoseconds: UInt64 = 1_000_000_000) {
        self.now = Atomic(nanoseconds)
    }

    public func nanoseconds() -> UInt64 { now.load(ordering: .acquiring) }

    public func advance(by duration: Duration) {
        now.add(duration.nanoseconds, ordering: .releasing)
    }
}

extension Duration {
    /// The duration in whole nanoseconds, clamped to zero for negative durations.
    public var nanoseconds: UInt64 {
        let (seconds, attoseconds) = components
        if seconds < 0 { return 0 }
        return UInt64(seconds) &* 1_000_000_000 &+ UInt64(attoseconds / 1_000_000_000)
    }
}
