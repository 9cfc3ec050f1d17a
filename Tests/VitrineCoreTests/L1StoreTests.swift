import Testing
@testable import VitrineCore

/// A value whose cost is set by the test.
struct Blob: CacheCosted, Sendable, Equatable {
    var name: String
    var size: Int
    var cost: Int { size }
}

@Suite struct L1StoreTests {
    let clock = ManualClock()

    func makeStore(budget: Int = 1 << 20, shards: Int = 4) -> L1Store<Blob> {
        L1Store(byteBudget: budget, shardCount: shards, raceWindow: .seconds(60), clock: clock)
    }

    func value(_ lookup: CacheLookup<Blob>) -> Blob? {
        if case .fresh(let hit) = lookup { return hit.value }
        return nil
    }

    @Test func storedEntryIsFreshUntilItsTTL() {
        let store = makeStore()
        let key = CacheKey("/catalog/products/1")
        #expect(store.store(Blob(name: "a", size: 10), for: key, ttl: .seconds(60), token: store.fetchToken()) == .stored)
        guard case .fresh(let hit) = store.lookup(key) else {
            Issue.record("expected a fresh hit")
            return
        }
        #expect(hit.value.name == "a")
        #expect(hit.remainingNanoseconds == 60_000_000_000)
        clock.advance(by: .seconds(59))
        guard case .fresh(let later) = store.lookup(key) else {
            Issue.record("expected a fresh hit at 59 s")
            return
        }
        #expect(later.residentNanoseconds == 59_000_000_000)
        clock.advance(by: .seconds(1))
        guard case .miss = store.lookup(key) else {
            Issue.record("expected a miss at 60 s")
            return
        }
        #expect(store.entryCount == 0)
        #expect(store.byteCount == 0)
    }

    @Test func graceKeepsAnExpiredEntryAsStale() {
        let store = makeStore()
        let key = CacheKey("/k")
        store.store(Blob(name: "a", size: 1), for: key, ttl: .seconds(10), grace: .seconds(30), token: store.fetchToken())
        clock.advance(by: .seconds(15))
        guard case .stale(let hit) = store.lookup(key) else {
            Issue.record("expected stale")
            return
        }
        #expect(hit.remainingNanoseconds == -5_000_000_000)
        clock.advance(by: .seconds(30))
        guard case .miss = store.lookup(key) else {
            Issue.record("expected a miss past grace")
            return
        }
    }

    @Test func byteBudgetIsNeverExceeded() {
        let overhead = L1Store<Blob>.entryOverhead
        let store = makeStore(budget: 4 * 10 * (1000 + overhead + 16), shards: 4)
        for index in 0..<200 {
            store.store(Blob(name: "\(index)", size: 1000), for: CacheKey("/item/\(index)"), ttl: .seconds(60), token: store.fetchToken())
            #expect(store.byteCount <= store.byteBudget)
        }
        #expect(store.entryCount > 0)
        #expect(store.entryCount <= 40)
    }

    @Test func tooLargeForAShardIsRefused() {
        let store = makeStore(budget: 4096, shards: 4)
        #expect(store.store(Blob(name: "big", size: 2000), for: CacheKey("/big"), ttl: .seconds(1), token: store.fetchToken()) == .tooLarge)
        #expect(store.entryCount == 0)
    }

    @Test func replacingAKeyKeepsAccountingExact() {
        let store = makeStore()
        let key = CacheKey("/k")
        store.store(Blob(name: "a", size: 100), for: key, tags: ["t"], ttl: .seconds(60), token: store.fetchToken())
        let first = store.byteCount
        store.store(Blob(name: "b", size: 300), for: key, tags: ["t"], ttl: .seconds(60), token: store.fetchToken())
        #expect(store.entryCount == 1)
        #expect(store.byteCount == first + 200)
        #expect(value(store.lookup(key))?.name == "b")
        #expect(store.purge(tag: "t") == 1)
    }

    @Test func tagPurgeRemovesEveryTaggedEntryAndNothingElse() {
        let store = makeStore()
        for id in 0..<100 {
            let tags = id % 2 == 0 ? ["category:even", "product:\(id)"] : ["category:odd", "product:\(id)"]
            store.store(Blob(name: "\(id)", size: 10), for: CacheKey("/p/\(id)"), tags: tags, ttl: .seconds(60), token: store.fetchToken())
        }
        #expect(store.purge(tag: "category:even") == 50)
        for id in 0..<100 {
            let found = value(store.lookup(CacheKey("/p/\(id)"))) != nil
            #expect(found == (id % 2 == 1), "entry \(id)")
        }
        #expect(store.entryCount == 50)
        // An entry stored after the purge is not affected by it.
        store.store(Blob(name: "new", size: 10), for: CacheKey("/p/0"), tags: ["category:even"], ttl: .seconds(60), token: store.fetchToken())
        #expect(value(store.lookup(CacheKey("/p/0")))?.name == "new")
    }

    @Test func tagPurgeWritesOneRowWhateverTheTagCovers() {
        let store = makeStore(budget: 512 << 20, shards: 16)
        for id in 0..<50_000 {
            store.store(Blob(name: "", size: 1), for: CacheKey("/p/\(id)"), tags: ["big"], ttl: .seconds(60), token: store.fetchToken())
        }
        store.store(Blob(name: "", size: 1), for: CacheKey("/single"), tags: ["small"], ttl: .seconds(60), token: store.fetchToken())
        let entriesBefore = store.entryCount
        #expect(store.purge(tag: "big") == 50_000)
        #expect(store.purge(tag: "small") == 1)
        // The purge itself touched no entry: they are reclaimed lazily, on lookup or eviction.
        #expect(store.entryCount == entriesBefore)
        #expect(value(store.lookup(CacheKey("/p/123"))) == nil)
        #expect(store.entryCount == entriesBefore - 1)
    }

    @Test func softPurgeMarksStaleWithinGrace() {
        let store = makeStore()
        store.store(Blob(name: "a", size: 1), for: CacheKey("/a"), tags: ["t"], ttl: .seconds(60), grace: .seconds(60), token: store.fetchToken())
        store.store(Blob(name: "b", size: 1), for: CacheKey("/b"), ttl: .seconds(60), grace: .seconds(60), token: store.fetchToken())
        store.purge(tag: "t", mode: .soft)
        store.purge(key: CacheKey("/b"), mode: .soft)
        guard case .stale = store.lookup(CacheKey("/a")), case .stale = store.lookup(CacheKey("/b")) else {
            Issue.record("soft-purged entries must be stale")
            return
        }
    }

    @Test func keyAndPrefixPurges() {
        let store = makeStore()
        for path in ["/catalog/a", "/catalog/b", "/search/a"] {
            store.store(Blob(name: path, size: 1), for: CacheKey(path), ttl: .seconds(60), token: store.fetchToken())
        }
        #expect(store.purge(key: CacheKey("/search/a")) == 1)
        #expect(store.purge(key: CacheKey("/search/a")) == 0)
        #expect(store.purge(prefix: "/catalog/") == 2)
        #expect(store.entryCount == 0)
    }

    @Test func aResponseFetchedBeforeAPurgeIsNeverServed() {
        let store = makeStore()
        let key = CacheKey("/catalog/products/7")
        // Key purge mid-fetch: the store is refused.
        let token = store.fetchToken()
        store.purge(key: key)
        #expect(store.store(Blob(name: "stale", size: 1), for: key, ttl: .seconds(60), token: token) == .purgedDuringFetch)
        // Prefix purge mid-fetch.
        let second = store.fetchToken()
        store.purge(prefix: "/catalog/")
        #expect(store.store(Blob(name: "stale", size: 1), for: key, ttl: .seconds(60), token: second) == .purgedDuringFetch)
        // Purge of everything mid-fetch.
        let everything = store.fetchToken()
        store.purgeAll()
        #expect(store.store(Blob(name: "stale", size: 1), for: key, ttl: .seconds(60), token: everything) == .purgedDuringFetch)
        // Tag purge mid-fetch: stored, but never served.
        let third = store.fetchToken()
        store.purge(tag: "product:7")
        store.store(Blob(name: "stale", size: 1), for: key, tags: ["product:7"], ttl: .seconds(60), token: third)
        #expect(value(store.lookup(key)) == nil)
        // A purge before the fetch began does not affect it.
        let fourth = store.fetchToken()
        #expect(store.store(Blob(name: "fresh", size: 1), for: key, tags: ["product:7"], ttl: .seconds(60), token: fourth) == .stored)
        #expect(value(store.lookup(key))?.name == "fresh")
    }

    @Test func concurrentUseKeepsTheStoreConsistent() async {
        let store = L1Store<Blob>(byteBudget: 200_000, shardCount: 8, clock: SystemClock())
        await withTaskGroup(of: Void.self) { group in
            for worker in 0..<8 {
                group.addTask {
                    for step in 0..<5_000 {
                        let id = (step * 31 + worker * 7) % 500
                        let key = CacheKey("/p/\(id)")
                        switch step % 10 {
                        case 0: store.purge(tag: "product:\(id % 50)")
                        case 1: store.purge(key: key)
                        case 2, 3, 4:
                            store.store(Blob(name: "\(id)", size: 100 + id), for: key, tags: ["product:\(id % 50)"], ttl: .seconds(60), token: store.fetchToken())
                        default:
                            if case .fresh(let hit) = store.lookup(key) { #expect(hit.value.name == "\(id)") }
                        }
                    }
                }
            }
        }
        #expect(store.byteCount <= store.byteBudget)
        #expect(store.entryCount >= 0)
        store.purgeAll()
        #expect(store.entryCount == 0)
        #expect(store.byteCount == 0)
    }
}
