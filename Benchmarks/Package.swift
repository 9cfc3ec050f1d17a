// swift-tools-version: 6.1
// Micro-benchmarks (ordo-one/benchmark), kept out of the main package so `make test` and
// `make demo` do not build the benchmark tooling. Run: `cd Benchmarks && swift package benchmark`.
import PackageDescription

/// An ordo-one/benchmark suite: `Benchmarks/NAME/`, run by `swift package benchmark`.
func benchmarkSuite(_ name: String, _ dependencies: [Target.Dependency]) -> Target {
    .executableTarget(
        name: name,
        dependencies: [.product(name: "Benchmark", package: "benchmark")] + dependencies,
        path: "Benchmarks/\(name)",
        swiftSettings: [.swiftLanguageMode(.v6)],
        plugins: [.plugin(name: "BenchmarkPlugin", package: "benchmark")]
    )
}

let package = Package(
    name: "VitrineBenchmarks",
    platforms: [.macOS(.v15)],
    products: [.executable(name: "vitrine-load", targets: ["vitrine-load"])],
    dependencies: [
        .package(name: "vitrine", path: ".."),
        .package(url: "https://github.com/ordo-one/benchmark", from: "1.38.1", traits: ["MallocInterposer"]),
        .package(url: "https://github.com/vapor/postgres-nio", from: "1.33.2"),
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
        .package(url: "https://github.com/apple/swift-nio", from: "2.101.2"),
        .package(url: "https://github.com/HdrHistogram/hdrhistogram-swift", from: "0.2.0"),
    ],
    targets: [
        benchmarkSuite("StoreBenchmarks", [.product(name: "VitrineCore", package: "vitrine")]),
        benchmarkSuite("RedisBenchmarks", [.product(name: "VitrineRedis", package: "vitrine")]),
        benchmarkSuite(
            "HTTPBenchmarks",
            [
                .product(name: "VitrineProxy", package: "vitrine"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOEmbedded", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
            ]),
        // Commit-to-fresh latency through the change feed, against a running `vitrine demo --postgres`.
        .executableTarget(
            name: "commit-to-fresh",
            dependencies: [
                .product(name: "PostgresNIO", package: "postgres-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
            ],
            path: "Sources/commit-to-fresh",
            swiftSettings: [.swiftLanguageMode(.v6)]
        ),
        // Our Redis client's GET throughput on one connection, beside `redis-benchmark`.
        .executableTarget(
            name: "redis-throughput",
            dependencies: [
                .product(name: "VitrineRedis", package: "vitrine"),
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
            ],
            path: "Sources/redis-throughput",
            swiftSettings: [.swiftLanguageMode(.v6)]
        ),
        // The load generator of CONTRACT.md's "Benchmark target".
        .executableTarget(
            name: "vitrine-load",
            dependencies: [
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "Histogram", package: "hdrhistogram-swift"),
            ],
            path: "Sources/vitrine-load",
            swiftSettings: [.swiftLanguageMode(.v6)]
        ),
    ]
)
