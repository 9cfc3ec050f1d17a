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
    /// Wall-clock seconds since the Unix epoch, for `Date`, `Expires` and `Age` (RFC 9111 §4.2.3).
    func wallSeconds() -> Int
}

/// The process's monotonic clock (`CLOCK_MONOTONIC`).
public struct SystemClock: CacheClock {
    public init() {}

    public func nanoseconds() -> UInt64 {
        var spec = timespec()
        clock_gettime(CLOCK_MONOTONIC, &spec)
        return UInt64(spec.tv_sec) &* 1_000_000_000 &+ UInt64(spec.tv_nsec)
    }

    public func wallSeconds() -> Int {
        var spec = timespec()
        clock_gettime(CLOCK_REALTIME, &spec)
        return Int(spec.tv_sec)
    }
}

/// A clock that moves only when told to; for tests.
public final class ManualClock: CacheClock {
    private let now: Atomic<UInt64>
    private let start: UInt64
    private let wallStart: Int

    /// - Parameter wallStart: the wall-clock seconds at the start (default 2026-01-01T00:00:00Z).
    public init(startingAt nanoseconds: UInt64 = 1_000_000_000, wallStart: Int = 1_767_225_600) {
        self.now = Atomic(nanoseconds)
        self.start = nanoseconds
        self.wallStart = wallStart
    }

    public func nanoseconds() -> UInt64 { now.load(ordering: .acquiring) }

    public func wallSeconds() -> Int { wallStart + Int((nanoseconds() - start) / 1_000_000_000) }

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
