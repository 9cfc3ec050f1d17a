import Benchmark
import VitrineCore

/// A stored value of a fixed size (the proxy stores `CachedResponse`; the store only sees cost).
struct Payload: CacheCosted, Sendable {
    let size: Int
    var cost: Int { size }
}

func filledStore(entries: Int, tag: (Int) -> String) -> L1Store<Payload> {
    let store = L1Store<Payload>(byteBudget: 4 << 30, shardCount: 64)
    for id in 0..<entries {
        store.store(Payload(size: 2048), for: CacheKey("/catalog/products/\(id)"), tags: [tag(id), "product:\(id)"],
                    ttl: .seconds(3600), token: store.fetchToken())
    }
    return store
}

let benchmarks: @Sendable () -> Void = {
    Benchmark.defaultConfiguration = .init(metrics: [.wallClock, .cpuTotal, .mallocCountTotal, .throughput], maxDuration: .seconds(3))

    Benchmark("L1 get (hit)") { benchmark in
        let store = filledStore(entries: 10_000) { "category:\($0 % 24)" }
        let keys = (0..<1024).map { CacheKey("/catalog/products/\($0 * 7)") }
        benchmark.startMeasurement()
        for index in benchmark.scaledIterations {
            blackHole(store.lookup(keys[index & 1023]))
        }
    }

    Benchmark("L1 put (replace)") { benchmark in
        let store = filledStore(entries: 10_000) { "category:\($0 % 24)" }
        let keys = (0..<1024).map { CacheKey("/catalog/products/\($0 * 7)") }
        let tags = ["category:1", "product:1"]
        benchmark.startMeasurement()
        for index in benchmark.scaledIterations {
            store.store(Payload(size: 2048), for: keys[index & 1023], tags: tags, ttl: .seconds(60), token: store.fetchToken())
        }
    }

    // The purge itself: one tag-table row, whatever the number of entries that carry the tag.
    for size in [1, 1_000, 1_000_000] {
        Benchmark("L1 tag purge, tag on \(size) entries", configuration: .init(maxDuration: .seconds(2), maxIterations: 10_000)) { benchmark in
            let store = filledStore(entries: size) { _ in "category:big" }
            benchmark.startMeasurement()
            for _ in benchmark.scaledIterations {
                blackHole(store.purge(tag: "category:big"))
            }
        }
    }

    Benchmark("cache key derivation") { benchmark in
        let targets = (0..<1024).map { "/catalog/categories/\($0 % 24)/products?sort=price_asc&page=\($0 % 5)" }
        benchmark.startMeasurement()
        for index in benchmark.scaledIterations {
            blackHole(CacheKey(targets[index & 1023]))
        }
    }

    Benchmark("Cache-Control parse + storage decision") { benchmark in
        let policy = ResponseCachePolicy(defaultTTL: .seconds(60))
        let headers: [(name: String, value: String)] = [
            ("Content-Type", "application/json"), ("Cache-Control", "public, max-age=300, stale-while-revalidate=30"),
            ("ETag", "\"abc\""), ("Surrogate-Key", "product:1 category:2"),
        ]
        benchmark.startMeasurement()
        for _ in benchmark.scaledIterations {
            blackHole(policy.decide(status: 200, headers: headers))
        }
    }
}
