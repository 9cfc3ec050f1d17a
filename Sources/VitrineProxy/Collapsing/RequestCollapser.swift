import NIOCore
import Synchronization
import VitrineCore

/// What a collapsed request gets when the fetch it waited for ends.
enum CollapseOutcome: Sendable {
    /// The response was stored: serve it as a hit.
    case stored(CachedResponse, remainingNanoseconds: Int64)
    /// Not stored (uncacheable, purged mid-fetch, the leader's client left): look up again.
    case retry
    /// The origin failed: answer with this error, unless a stale entry may be served.
    case failed(ProxyError)
}

/// Request collapsing across every event loop: one origin fetch per key, other requests for the
/// key wait for it (bounded), and recently uncacheable keys are passed straight through. The
/// decisions are `CollapsingTable`'s; this adds the lock and hands outcomes to each waiter's loop.
final class RequestCollapser: Sendable {
    struct Waiter: Sendable {
        let id: UInt64
        let eventLoop: any EventLoop
        let deliver: @Sendable (CollapseOutcome) -> Void
    }

    /// How long a key that answered uncacheable is passed without collapsing.
    let passDuration: Duration
    /// How long a waiter waits before fetching on its own.
    let maxWait: Duration
    private let table = Mutex(CollapsingTable<Waiter>())
    private let nextID = Atomic<UInt64>(1)

    init(passDuration: Duration = .seconds(10), maxWait: Duration = .seconds(5)) {
        self.passDuration = passDuration
        self.maxWait = maxWait
    }

    func makeWaiterID() -> UInt64 { nextID.add(1, ordering: .relaxed).newValue }

    func join(_ key: CacheKey, waiter: Waiter, now: UInt64) -> CollapsingTable<Waiter>.Join {
        table.withLock { $0.join(key, waiter: waiter, now: now) }
    }

    /// Starts a fetch with nobody waiting (a background refresh); false when one is under way.
    func lead(_ key: CacheKey) -> Bool {
        table.withLock { $0.lead(key) }
    }

    /// A waiter gave up; true when it was still queued (and so must fetch on its own).
    func leave(_ key: CacheKey, id: UInt64) -> Bool {
        table.withLock { $0.leave(key) { $0.id == id } }
    }

    /// Ends the fetch for `key`: every waiter gets `outcome` on its own loop. With `pass`, the key
    /// is fetched without collapsing for `passDuration`.
    ///
    /// A stored response is handed over only if `stillCurrent` says no purge touched it since its
    /// fetch began; else the waiters look up again. Asked once nobody can join any more: a waiter
    /// that joined after a purge is then sure to be caught by the check, and one that joined
    /// before it sent its request before the change and may have the response fetched for it.
    func finish(_ key: CacheKey, _ outcome: CollapseOutcome, pass: Bool = false, now: UInt64, stillCurrent: () -> Bool = { true }) {
        let waiters = table.withLock { table in
            if pass { table.markPass(key, until: now &+ passDuration.nanoseconds, now: now) }
            return table.finish(key)
        }
        guard !waiters.isEmpty else { return }
        let outcome: CollapseOutcome = if case .stored = outcome, !stillCurrent() { .retry } else { outcome }
        for waiter in waiters {
            waiter.eventLoop.execute { waiter.deliver(outcome) }
        }
    }

}
