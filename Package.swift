// swift-tools-version: 6.1
import Foundation
import PackageDescription

let strict: [SwiftSetting] = [.swiftLanguageMode(.v6)]

let package = Package(
    name: "vitrine",
    platforms: [.macOS(.v15)],
    products: [
        .executable(name: "vitrine", targets: ["vitrine"]),
        .library(name: "VitrineCore", targets: ["VitrineCore"]),
        .library(name: "VitrineProxy", targets: ["VitrineProxy"]),
        .library(name: "VitrineRedis", targets: ["VitrineRedis"]),
    ],
    dependencies: [
        .package(url: "https://github.com/apple/swift-nio", from: "2.101.2"),
        .package(url: "https://github.com/apple/swift-nio-ssl", from: "2.37.6"),
        .package(url: "https://github.com/apple/swift-nio-http2.git", from: "1.46.0"),
        .package(url: "https://github.com/apple/swift-argument-parser", from: "1.8.2"),
        .package(url: "https://github.com/apple/swift-log", from: "1.16.2"),
        .package(url: "https://github.com/swift-server/swift-prometheus", from: "2.4.1"),
        .package(url: "https://github.com/swift-server/swift-service-lifecycle", from: "2.13.0"),
        .package(url: "https://github.com/apple/swift-nio-extras", from: "1.35.2"),
        .package(url: "https://github.com/jpsim/Yams", from: "6.2.2"),
        .package(url: "https://github.com/adam-fowler/compress-nio", from: "1.5.0"),
        .package(url: "https://github.com/vapor/postgres-nio", from: "1.33.2"),
        .package(url: "https://github.com/apple/swift-http-structured-headers", from: "1.7.0"),
    ],
    targets: [
        // Pure cache logic: keys, the L1 store and its eviction policy, tags, HTTP cache policy.
        // No event loop, no sockets: everything here is tested as plain values.
        // Its generic store is called from VitrineProxy on every hit: cross-module optimisation
        // lets the compiler specialise it there instead of running it through generic metadata.
        .target(
            name: "VitrineCore",
            dependencies: [.product(name: "RawStructuredFieldValues", package: "swift-http-structured-headers")],
            swiftSettings: strict + [.unsafeFlags(["-cross-module-optimization"], .when(configuration: .release))]
        ),
        // A deadline for async work that may never return (a query on a dead connection).
        // Its own module, so that what needs only this (the demo origin) knows nothing of the cache.
        .target(name: "VitrineDeadline", swiftSettings: strict),
        // The YAML config model and its validation (messages name the offending key).
        .target(
            name: "VitrineConfig",
            dependencies: ["VitrineCore", .product(name: "Yams", package: "Yams")],
            swiftSettings: strict
        ),
        // hiredis, for RESP encoding and parsing (never its blocking I/O).
        // Not through pkg-config: its Cflags carry -D_FILE_OFFSET_BITS, which SwiftPM refuses.
        .systemLibrary(name: "CHiredis", providers: [.apt(["libhiredis-dev"])]),
        // A non-blocking, pipelined Redis client on SwiftNIO (TLS through swift-nio-ssl): where Redis is spoken.
        .target(
            name: "VitrineRedis",
            dependencies: [
                "CHiredis",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: strict
        ),
        // The Postgres change feed: LISTEN for wake-ups, the outbox after a cursor for the truth.
        .target(
            name: "VitrineFeed",
            dependencies: [
                "VitrineCore", "VitrineDeadline",
                .product(name: "PostgresNIO", package: "postgres-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            swiftSettings: strict
        ),
        // The data path and the admin API on SwiftNIO. It knows the shared tier, the change feed
        // and their statuses only as protocols and plain values: Redis and Postgres are VitrineNode's.
        .target(
            name: "VitrineProxy",
            dependencies: [
                "VitrineCore", "VitrineConfig",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "NIOTLS", package: "swift-nio"),
                .product(name: "NIOHTTP2", package: "swift-nio-http2"),
                .product(name: "NIOHPACK", package: "swift-nio-http2"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "Prometheus", package: "swift-prometheus"),
                .product(name: "CompressNIO", package: "compress-nio"),
            ],
            swiftSettings: strict
        ),
        // The composition root: builds a node (the proxy, the Redis shared tier and its purge log,
        // the change feed) and runs it. The only module that knows every other one.
        .target(
            name: "VitrineNode",
            dependencies: [
                "VitrineCore", "VitrineConfig", "VitrineProxy", "VitrineRedis", "VitrineFeed",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOExtras", package: "swift-nio-extras"),
                .product(name: "UnixSignals", package: "swift-service-lifecycle"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            swiftSettings: strict
        ),
        // The embedded demo origin: generated catalog (in memory or in Postgres), search and writes.
        .target(
            name: "VitrineDemoOrigin",
            dependencies: [
                "VitrineDeadline",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
                .product(name: "PostgresNIO", package: "postgres-nio"),
            ],
            // Symbolic links to config/postgres/: the binary carries the SQL it installs.
            resources: [.embedInCode("SQL/catalog-schema.sql"), .embedInCode("SQL/vitrine.sql"), .embedInCode("SQL/catalog-triggers.sql")],
            swiftSettings: strict
        ),
        .executableTarget(
            name: "vitrine",
            dependencies: [
                "VitrineCore", "VitrineConfig", "VitrineProxy", "VitrineNode", "VitrineDemoOrigin", "VitrineFeed", "VitrineDeadline",
                .product(name: "ArgumentParser", package: "swift-argument-parser"),
                .product(name: "Logging", package: "swift-log"),
                .product(name: "ServiceLifecycle", package: "swift-service-lifecycle"),
            ],
            swiftSettings: strict
        ),
        // Test helpers shared by the test targets: psql, Postgres servers of a test's own.
        .target(name: "VitrineTestSupport", path: "Tests/VitrineTestSupport", swiftSettings: strict),
        .testTarget(name: "VitrineCoreTests", dependencies: ["VitrineCore"], swiftSettings: strict),
        .testTarget(name: "VitrineDeadlineTests", dependencies: ["VitrineDeadline"], swiftSettings: strict),
        .testTarget(name: "VitrineConfigTests", dependencies: ["VitrineConfig"], swiftSettings: strict),
        // The SQL in config/postgres/ and the change feed, against a real Postgres.
        .testTarget(name: "VitrineFeedTests", dependencies: ["VitrineFeed", "VitrineTestSupport"], swiftSettings: strict),
        .testTarget(
            name: "VitrineRedisTests",
            dependencies: [
                "VitrineRedis", "CHiredis",
                "VitrineTestSupport",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOEmbedded", package: "swift-nio"),
                .product(name: "Logging", package: "swift-log"),
            ],
            swiftSettings: strict
        ),
        .testTarget(
            name: "VitrineProxyTests",
            dependencies: [
                "VitrineProxy", "VitrineNode", "VitrineDemoOrigin", "VitrineConfig", "VitrineCore", "VitrineFeed", "VitrineDeadline", "VitrineRedis",
                "VitrineTestSupport",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOPosix", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOEmbedded", package: "swift-nio"),
                .product(name: "NIOSSL", package: "swift-nio-ssl"),
                .product(name: "NIOTLS", package: "swift-nio"),
                .product(name: "CompressNIO", package: "compress-nio"),
                .product(name: "PostgresNIO", package: "postgres-nio"),
            ],
            swiftSettings: strict
        ),
    ]
)

// libFuzzer targets for everything Vitrine parses from the outside (`make fuzz`, scripts/fuzz.sh).
// Declared only when VITRINE_FUZZ is set, so that the ordinary build never compiles a target
// that needs `-sanitize=fuzzer` (libFuzzer supplies its `main`).
if ProcessInfo.processInfo.environment["VITRINE_FUZZ"] != nil {
    package.targets.append(.target(name: "VitrineFuzzDriver", path: "Fuzz/Driver"))
    package.targets.append(
        .executableTarget(
            name: "vitrine-fuzz",
            dependencies: [
                "VitrineFuzzDriver", "VitrineCore", "VitrineConfig", "VitrineProxy", "VitrineRedis", "VitrineFeed",
                .product(name: "NIOCore", package: "swift-nio"),
                .product(name: "NIOHTTP1", package: "swift-nio"),
                .product(name: "NIOEmbedded", package: "swift-nio"),
                .product(name: "NIOHPACK", package: "swift-nio-http2"),
            ],
            path: "Fuzz/Sources",
            swiftSettings: strict + [.unsafeFlags(["-parse-as-library"])]
        ))
    package.products.append(.executable(name: "vitrine-fuzz", targets: ["vitrine-fuzz"]))
}
