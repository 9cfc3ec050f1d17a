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
    Benchmark.defaultConfiguration = .init(metrics: [.wallClock, .mallocCountTotal, .throughput], maxDuration: .seconds(3))

    // Built once, outside any measurement: building and freeing a million entries is not what
    // is measured.
    let warm = filledStore(entries: 10_000) { "category:\($0 % 24)" }
    let keys = (0..<1024).map { CacheKey("/catalog/products/\($0 * 7)") }

    Benchmark("L1 get (hit)") { benchmark in
        benchmark.startMeasurement()
        for index in benchmark.scaledIterations {
            blackHole(warm.lookup(keys[index & 1023]))
        }
        benchmark.stopMeasurement()
    }

    Benchmark("L1 put (replace)") { benchmark in
        let tags = ["category:1", "product:1"]
        benchmark.startMeasurement()
        for index in benchmark.scaledIterations {
            warm.store(Payload(size: 2048), for: keys[index & 1023], tags: tags, ttl: .seconds(60), token: warm.fetchToken())
        }
        benchmark.stopMeasurement()
    }

    // The purge itself: one tag-table row, whatever the number of entries that carry the tag.
    for size in [1, 1_000, 1_000_000] {
        let store = filledStore(entries: size) { _ in "category:big" }
        Benchmark("L1 tag purge, tag on \(size) entries") { benchmark in
            benchmark.startMeasurement()
            for _ in benchmark.scaledIterations {
                blackHole(store.purge(tag: "category:big"))
            }
            benchmark.stopMeasurement()
        }
    }

    // The targets are made once, outside the benchmark's closure: made inside, their building was
    // measured too (20-35 µs that were not the normalizer's).
    let listingTargets = (0..<1024).map { "/catalog/categories/\($0 % 24)/products?sort=price_asc&page=\($0 % 5)" }
    Benchmark("cache key derivation (query to sort)") { benchmark in
        let normalizer = CacheKeyNormalizer()
        for index in benchmark.scaledIterations {
            blackHole(normalizer.key(target: listingTargets[index & 1023]))
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
        benchmark.stopMeasurement()
    }
}
