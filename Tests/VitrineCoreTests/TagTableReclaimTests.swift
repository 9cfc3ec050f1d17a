import Testing
@testable import VitrineCore

/// Purged-tag rows are reclaimed once they can no longer matter, and never before.
@Suite struct TagTableReclaimTests {
    let clock = ManualClock()

    func makeStore() -> L1Store<Blob> {
        L1Store(byteBudget: 1 << 24, shardCount: 4, raceWindow: .seconds(60), clock: clock)
    }

    @Test func rowsOfPurgedTagsThatNothingCarriesAreReclaimed() {
        let store = makeStore()
        for id in 0..<20_000 { store.purge(tag: "product:\(id)") }
        let afterBurst = store.tagRowCount
        #expect(afterBurst == 20_000, "within the race window every row stays")
        clock.advance(by: .seconds(61))
        for id in 20_000..<40_000 { store.purge(tag: "product:\(id)") }
        // Each shard swept as it doubled: old rows went, recent ones stayed.
        #expect(store.tagRowCount < 30_000, "\(store.tagRowCount) rows kept")
        #expect(store.tagRowCount >= 20_000)
    }

    @Test func aRowAStoredEntryCarriesIsKept() {
        let store = makeStore()
        let key = CacheKey("/p/1")
        let token = store.fetchToken()
        #expect(store.store(Blob(name: "old", size: 10), for: key, tags: ["product:1"], ttl: .seconds(3600), token: token) == .stored)
        store.purge(tag: "product:1")
        // Not looked up since: the entry still sits in its shard, purged only by the row.
        clock.advance(by: .seconds(120))
        for id in 2..<40_000 { store.purge(tag: "product:\(id)") }
        guard case .miss = store.lookup(key) else {
            Issue.record("a reclaimed row let a purged entry be served")
            return
        }
    }

    @Test func aFetchThatBeganBeforeAPurgeIsRefusedWithinTheWindow() {
        let store = makeStore()
        let token = store.fetchToken()
        store.purge(tag: "product:7")
        clock.advance(by: .seconds(30))
        for id in 0..<5_000 { store.purge(tag: "other:\(id)") }
        #expect(store.wasPurged(CacheKey("/p/7"), tags: ["product:7"], since: token))
    }
}
