import Benchmark
import Foundation
import NIOCore
import NIOPosix
import VitrineRedis

/// Pipelined GETs through our client against a running Redis (`VITRINE_BENCH_REDIS_URL`,
/// default redis://127.0.0.1:6379/0). Compare with `redis-benchmark -P 64 -t get` on the same
/// server: GETs per second = throughput × 64.
let benchmarks: @Sendable () -> Void = {
    // The codec alone (hiredis), no server needed.
    Benchmark("RESP encode: GET key", configuration: .init(metrics: [.wallClock, .throughput, .mallocCountTotal], maxDuration: .seconds(3))) {
        benchmark in
        var buffer = ByteBuffer()
        buffer.reserveCapacity(64)
        let command: [RESPArgument] = ["GET", "vt:e:/catalog/products/42"]
        for _ in benchmark.scaledIterations {
            buffer.clear()
            RESPEncoder.encode(command, into: &buffer)
            blackHole(buffer.readableBytes)
        }
    }
    Benchmark(
        "RESP decode: 64 bulk replies of 2 KB", configuration: .init(metrics: [.wallClock, .throughput, .mallocCountTotal], maxDuration: .seconds(3))
    ) { benchmark in
        let payload = String(repeating: "x", count: 2048)
        let input = ByteBuffer(string: String(repeating: "$2048\r\n\(payload)\r\n", count: 64))
        let decoder = RESPDecoder()
        for _ in benchmark.scaledIterations {
            try? decoder.decode(input) { blackHole($0) }
        }
    }

    let url = (try? RedisURL(parsing: ProcessInfo.processInfo.environment["VITRINE_BENCH_REDIS_URL"] ?? "redis://127.0.0.1:6379/0"))
        ?? RedisURL()
    let loop = MultiThreadedEventLoopGroup.singleton.next()
    guard let connection = try? RedisConnection.connectFuture(to: url, on: loop).wait() else {
        print("no Redis at \(url): start one, or set VITRINE_BENCH_REDIS_URL")
        return
    }
    _ = try? connection.send(["SET", "bench:key", .string(String(repeating: "x", count: 3))]).wait()
    let batch = [[RESPArgument]](repeating: ["GET", "bench:key"], count: 64)

    Benchmark(
        "Redis: 64 pipelined GETs (wait for them)",
        configuration: .init(metrics: [.wallClock, .throughput, .mallocCountTotal], maxDuration: .seconds(5), maxIterations: 1_000_000)
    ) { benchmark in
        for _ in benchmark.scaledIterations {
            blackHole(try? connection.pipeline(batch).wait())
        }
    }

    // As the proxy uses it: commands sent from the connection's own event loop, each batch of 64
    // sent when the previous one's replies arrive; the benchmark thread waits once per 100.
    Benchmark(
        "Redis: 100 × 64 pipelined GETs from the event loop",
        configuration: .init(metrics: [.wallClock, .throughput, .mallocCountTotal], maxDuration: .seconds(5), maxIterations: 100_000)
    ) { benchmark in
        for _ in benchmark.scaledIterations {
            let done = loop.makePromise(of: Void.self)
            loop.execute {
                func send(_ remaining: Int) {
                    guard remaining > 0 else {
                        done.succeed()
                        return
                    }
                    connection.pipeline(batch).whenComplete { _ in send(remaining - 1) }
                }
                send(100)
            }
            try? done.futureResult.wait()
        }
    }

    // As many proxies' requests share one connection: 16 pipelines of 64 kept in flight (a new
    // one sent as each ends), 100 pipelines per iteration. Compare with
    // `redis-benchmark -P 64 -c 16 -t get` (the same 1,024 in flight).
    Benchmark(
        "Redis: 100 × 64 pipelined GETs, 16 pipelines in flight",
        configuration: .init(metrics: [.wallClock, .throughput, .mallocCountTotal], maxDuration: .seconds(5), maxIterations: 100_000)
    ) { benchmark in
        for _ in benchmark.scaledIterations {
            let done = loop.makePromise(of: Void.self)
            loop.execute {
                var sent = 0
                var ended = 0
                func send() {
                    sent += 1
                    connection.pipeline(batch).whenComplete { _ in
                        ended += 1
                        if sent < 100 { send() } else if ended == 100 { done.succeed() }
                    }
                }
                for _ in 0..<16 { send() }
            }
            try? done.futureResult.wait()
        }
    }
}
