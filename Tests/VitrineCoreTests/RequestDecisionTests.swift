import Testing
import VitrineCore

/// The request path's decisions as plain values (lookup, the shared tier's answer, the origin's
/// answer), then the caching semantics that used to need sockets, walked through the state
/// machine, the store and the collapsing table alone with a manual clock: stale-while-revalidate,
/// stale-if-error, collapsing, hit-for-miss and a purge during a fetch. Milliseconds, no sockets.
@Suite struct RequestDecisionTests {
    static let servable = StaleWindows(whileRevalidate: true, ifError: true)
    static let ifErrorOnly = StaleWindows(whileRevalidate: false, ifError: true)
    static let spent = StaleWindows(whileRevalidate: false, ifError: false)

    // MARK: lookup

    typealias Lookup = LookupDecision<String>

    @Test(arguments: [
        // found, wants origin, only-if-cached, GET → decision
        (Lookup.Found.fresh("h"), false, false, true, Lookup.hit("h")),
        (.fresh("h"), true, false, true, .collapse(consultSharedTier: false)),
        (.fresh("h"), false, true, true, .hit("h")),
        (.fresh("h"), true, false, false, .fetchAlone),
        (.stale("s", servable), false, false, true, .staleWhileRevalidate("s")),
        (.stale("s", servable), true, false, true, .collapse(consultSharedTier: false)),
        (.stale("s", ifErrorOnly), false, false, true, .collapse(consultSharedTier: true)),
        (.stale("s", ifErrorOnly), false, true, true, .notCached),
        (.stale("s", spent), false, false, false, .fetchAlone),
        (.miss, false, false, true, .collapse(consultSharedTier: true)),
        (.miss, false, true, true, .notCached),
        (.miss, false, false, false, .fetchAlone),
        (.miss, true, false, true, .collapse(consultSharedTier: false)),
    ])
    func lookupDecides(_ found: Lookup.Found, _ wantsOrigin: Bool, _ onlyIfCached: Bool, _ isGET: Bool, _ expected: Lookup) {
        #expect(Lookup.decide(found, wantsOrigin: wantsOrigin, onlyIfCached: onlyIfCached, isGET: isGET) == expected)
    }

    // MARK: l2-wait

    typealias Shared = SharedTierDecision<String, String>

    @Test(arguments: [
        // entry, may fetch (lease), stale held here, lease wait left → decision
        (Shared.Entry.fresh("r"), true, nil as String?, true, Shared.hit("r")),
        (.fresh("r"), false, "s", false, .hit("r")),
        (.varyMarker, true, nil, true, .restartForVariant),
        (.softPurged(kept: ("k", servable)), true, nil, true, .staleAndRefresh("k")),
        (.softPurged(kept: ("k", ifErrorOnly)), true, "k", true, .fetch),
        (.softPurged(kept: ("k", ifErrorOnly)), false, "k", true, .staleWhileLeased("k")),
        (.softPurged(kept: nil), true, nil, true, .fetch),
        (.absent, true, nil, true, .fetch),
        (.absent, false, nil, true, .waitForLease),
        (.absent, false, nil, false, .fetch),
        (.absent, false, "s", true, .staleWhileLeased("s")),
        (.exhausted, true, "s", true, .fetch),
        (.exhausted, false, nil, true, .waitForLease),
    ])
    func sharedTierAnswerDecides(_ entry: Shared.Entry, _ mayFetch: Bool, _ stale: String?, _ waitLeft: Bool, _ expected: Shared) {
        // A stale entry held here is servable while leased in these rows unless it is "k" (its
        // windows are in the entry).
        let windows = stale.map { ($0, $0 == "k" ? Self.ifErrorOnly : Self.servable) }
        #expect(Shared.decide(entry, mayFetch: mayFetch, stale: windows, leaseWaitLeft: waitLeft) == expected)
    }

    @Test func aStaleEntryPastBothWindowsIsNotServedWhileLeased() {
        #expect(Shared.decide(.absent, mayFetch: false, stale: ("s", Self.spent), leaseWaitLeft: true) == .waitForLease)
    }

    // MARK: fetch → deliver

    @Test(arguments: [
        (200, nil as StaleWindows?, OriginDecision.OnHead.stream),
        (304, nil, .stream),
        (304, spent, .revalidate),
        (503, ifErrorOnly, .staleIfError),
        (503, spent, .stream),
        (200, servable, .stream),
        (404, servable, .stream),
    ])
    func originHeadDecides(_ status: Int, _ stale: StaleWindows?, _ expected: OriginDecision.OnHead) {
        #expect(OriginDecision.onHead(status: status, stale: stale) == expected)
    }

    @Test func originFailureDecides() {
        #expect(OriginDecision.onFailure(responseStarted: true, retryable: true, attempts: 1, requestHadBody: false, stale: Self.servable) == .abort)
        #expect(OriginDecision.onFailure(responseStarted: false, retryable: true, attempts: 1, requestHadBody: false, stale: nil) == .retry)
        #expect(OriginDecision.onFailure(responseStarted: false, retryable: true, attempts: 2, requestHadBody: false, stale: nil) == .error)
        #expect(OriginDecision.onFailure(responseStarted: false, retryable: true, attempts: 1, requestHadBody: true, stale: nil) == .error)
        #expect(OriginDecision.onFailure(responseStarted: false, retryable: false, attempts: 1, requestHadBody: false, stale: Self.ifErrorOnly) == .stale)
        #expect(OriginDecision.onFailure(responseStarted: false, retryable: false, attempts: 1, requestHadBody: false, stale: Self.spent) == .error)
    }

    // MARK: Caching semantics, walked through the pure parts with a manual clock

    struct Page: CacheCosted, Sendable, Equatable {
        var body: String
        var cost: Int { body.utf8.count }
    }

    struct Waiter: Identifiable {
        let id: Int
    }

    let clock = ManualClock()
    let key = CacheKey("/catalog/products/1")

    func makeStore() -> L1Store<Page> {
        L1Store(byteBudget: 1 << 20, shardCount: 2, raceWindow: .seconds(60), clock: clock)
    }

    /// What lookup decides for `key` now, with stale-while-revalidate 5 s and stale-if-error 60 s.
    func decide(_ store: L1Store<Page>) -> LookupDecision<String> {
        let windows = { (hit: CacheHit<Page>) in
            hit.staleWindows(whileRevalidate: 5_000_000_000, ifError: 60_000_000_000)
        }
        let found: LookupDecision<String>.Found
        switch store.lookup(key) {
        case .fresh(let hit): found = .fresh(hit.value.body)
        case .stale(let hit): found = .stale(hit.value.body, windows(hit))
        case .miss: found = .miss
        }
        return .decide(found, wantsOrigin: false, onlyIfCached: false, isGET: true)
    }

    /// Fresh for 10 s, then stale-while-revalidate for 5 s, then stale-if-error only (served in
    /// place of an origin error) until 70 s, then gone.
    @Test func staleWhileRevalidateThenStaleIfErrorByTheClock() {
        let store = makeStore()
        #expect(store.store(Page(body: "v1"), for: key, ttl: .seconds(10), grace: .seconds(120), token: store.fetchToken()) == .stored)
        #expect(decide(store) == .hit("v1"))
        clock.advance(by: .seconds(12))
        #expect(decide(store) == .staleWhileRevalidate("v1"))
        clock.advance(by: .seconds(5))
        #expect(decide(store) == .collapse(consultSharedTier: true), "past stale-while-revalidate: fetched")
        guard case .stale(let hit) = store.lookup(key) else {
            Issue.record("kept for stale-if-error")
            return
        }
        let windows = hit.staleWindows(whileRevalidate: 5_000_000_000, ifError: 60_000_000_000)
        #expect(OriginDecision.onHead(status: 502, stale: windows) == .staleIfError)
        #expect(OriginDecision.onFailure(responseStarted: false, retryable: false, attempts: 1, requestHadBody: false, stale: windows) == .stale)
        clock.advance(by: .seconds(60))
        guard case .stale(let late) = store.lookup(key) else {
            Issue.record("still within its grace")
            return
        }
        let lateWindows = late.staleWindows(whileRevalidate: 5_000_000_000, ifError: 60_000_000_000)
        #expect(OriginDecision.onHead(status: 502, stale: lateWindows) == .stream, "past stale-if-error: the error is the answer")
    }

    /// Two connections miss the same key: the first leads, the second waits (collapsed-wait)
    /// and is answered from what the first stored, without a fetch of its own.
    @Test func collapsedRequestsShareOneFetch() {
        let store = makeStore()
        var table = CollapsingTable<Waiter>()
        var first = RequestStateMachine<String, Waiter>(maxBody: 100)
        var second = RequestStateMachine<String, Waiter>(maxBody: 100)
        first.headReceived()
        second.headReceived()
        #expect(decide(store) == .collapse(consultSharedTier: true))
        #expect(table.join(key, waiter: Waiter(id: 1), now: clock.nanoseconds()) == .lead)
        let token = store.fetchToken()
        first.fetchStarted("fetch")
        #expect(table.join(key, waiter: Waiter(id: 2), now: clock.nanoseconds()) == .wait)
        second.waitForCollapsedFetch(Waiter(id: 2))

        #expect(store.store(Page(body: "v1"), for: key, ttl: .seconds(10), token: token) == .stored)
        let woken = table.finish(key)
        #expect(woken.map(\.id) == [2])
        #expect(!store.wasPurged(key, tags: [], since: token), "nothing touched it: handed to the waiters")
        #expect(second.collapsedWaitEnded(id: 2)?.id == 2)
        #expect(second.answered(keepAlive: true) == .next)
        #expect(first.answered(keepAlive: true) == .next)
    }

    /// A response that could not be stored marks the key pass for a while (Varnish's
    /// hit-for-miss): the next request fetches alone instead of queueing behind another.
    @Test func hitForMissLetsRequestsFetchAlone() {
        var table = CollapsingTable<Waiter>()
        #expect(table.join(key, waiter: Waiter(id: 1), now: clock.nanoseconds()) == .lead)
        _ = table.finish(key)
        table.markPass(key, until: clock.nanoseconds() + 10_000_000_000, now: clock.nanoseconds())
        #expect(table.join(key, waiter: Waiter(id: 2), now: clock.nanoseconds()) == .pass)
        clock.advance(by: .seconds(11))
        #expect(table.join(key, waiter: Waiter(id: 3), now: clock.nanoseconds()) == .lead, "the mark expires")
    }

    /// A purge while the fetch is under way: the response is refused by the store, the waiters
    /// are not handed it and restart at lookup (a miss again: they fetch what is current).
    @Test func aPurgeDuringTheFetchKeepsTheOldAnswerOut() {
        let store = makeStore()
        var table = CollapsingTable<Waiter>()
        var waiting = RequestStateMachine<String, Waiter>(maxBody: 100)
        waiting.headReceived()
        #expect(table.join(key, waiter: Waiter(id: 1), now: clock.nanoseconds()) == .lead)
        let token = store.fetchToken()
        #expect(table.join(key, waiter: Waiter(id: 2), now: clock.nanoseconds()) == .wait)
        waiting.waitForCollapsedFetch(Waiter(id: 2))

        // A tag purge: the response is kept out by its tag (dropped at its first lookup), and
        // the waiters are told to look up again instead of being handed it.
        _ = store.purge(tag: "product:1")
        _ = store.store(Page(body: "old"), for: key, tags: ["product:1"], ttl: .seconds(10), token: token)
        #expect(store.wasPurged(key, tags: ["product:1"], since: token))
        #expect(table.finish(key).map(\.id) == [2])
        #expect(waiting.collapsedWaitEnded(id: 2) != nil)
        waiting.restart()
        #expect(waiting.restarts == 1)
        #expect(decide(store) == .collapse(consultSharedTier: true), "looked up again, it misses")
    }

    /// A key purge while the fetch is under way: the store refuses the response outright.
    @Test func aKeyPurgeDuringTheFetchRefusesTheStore() {
        let store = makeStore()
        let token = store.fetchToken()
        _ = store.purge(key: key)
        #expect(store.store(Page(body: "old"), for: key, ttl: .seconds(10), token: token) == .purgedDuringFetch)
        #expect(decide(store) == .collapse(consultSharedTier: true))
    }
}
