// GET throughput of our Redis client on one connection, for the ratio to `redis-benchmark`:
//
//   swift run -c release --package-path Benchmarks redis-throughput --url redis://127.0.0.1:6379/0 \
//       --seconds 5 --pipeline 64 --in-flight 1
//   redis-benchmark -p 6379 -t get -P 64 -c 1 -n 2000000 -q      # the same shape
//
// Commands are sent from the connection's own event loop, as the proxy sends them: `--in-flight`
// pipelines of `--pipeline` GETs each, a new pipeline sent as each one's replies arrive.
import Foundation
import NIOCore
import NIOPosix
import VitrineRedis

struct Options {
    var url = "redis://127.0.0.1:6379/0"
    var seconds = 5.0
    var pipeline = 64
    var inFlight = 1

    init(_ arguments: [String]) {
        var iterator = arguments.dropFirst().makeIterator()
        while let argument = iterator.next() {
            let value = iterator.next() ?? ""
            switch argument {
            case "--url": url = value
            case "--seconds": seconds = Double(value) ?? seconds
            case "--pipeline": pipeline = Int(value) ?? pipeline
            case "--in-flight": inFlight = Int(value) ?? inFlight
            default:
                FileHandle.standardError.write(Data("unknown option \(argument)\n".utf8))
                exit(2)
            }
        }
    }
}

let options = Options(CommandLine.arguments)
let url = try RedisURL(parsing: options.url)
let loop = MultiThreadedEventLoopGroup.singleton.next()
let connection = try await RedisConnection.connect(to: url, on: loop)
_ = try await connection.send(["SET", "bench:key", "xyz"]).get()
let batch = [[RESPArgument]](repeating: ["GET", "bench:key"], count: options.pipeline)

/// Runs pipelines until `deadline`; returns how many GETs were answered.
func run(until deadline: NIODeadline) -> EventLoopFuture<Int> {
    let done = loop.makePromise(of: Int.self)
    loop.execute {
        var answered = 0
        var running = options.inFlight
        func send() {
            connection.pipeline(batch).assumeIsolated().whenComplete { _ in
                answered += options.pipeline
                if NIODeadline.now() < deadline {
                    send()
                } else {
                    running -= 1
                    if running == 0 { done.succeed(answered) }
                }
            }
        }
        for _ in 0..<options.inFlight { send() }
    }
    return done.futureResult
}

_ = try await run(until: .now() + .milliseconds(500)).get()  // warm-up
let started = ContinuousClock.now
let answered = try await run(until: .now() + .nanoseconds(Int64(options.seconds * 1e9))).get()
let elapsed = ContinuousClock.now - started
let seconds = Double(elapsed.components.seconds) + Double(elapsed.components.attoseconds) / 1e18
print(String(format: "%.0f GET/s (%d GETs in %.2f s; pipeline %d, %d in flight)", Double(answered) / seconds, answered, seconds, options.pipeline, options.inFlight))
await connection.close()
