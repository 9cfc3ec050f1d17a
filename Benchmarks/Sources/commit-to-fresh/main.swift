// Commit-to-fresh latency: commits UPDATEs of products' prices in Postgres, then polls each
// product through the proxy until its new price shows, and prints percentiles.
//
//   vitrine demo --postgres postgres://USER@127.0.0.1:5432/DB      # in another shell
//   swift run -c release --package-path Benchmarks commit-to-fresh \
//       --proxy 127.0.0.1:8080 --postgres postgres://USER@127.0.0.1:5432/DB --updates 1000 \
//       [--writers 8] [--hold-every 20 --hold-ms 1000] [--listing]
//
// The clock starts when the UPDATE's commit is acknowledged and stops at the first response
// through the proxy that shows the new price. Every product is cached (a HIT) before its update.
//
// --writers N: N writers at once (threads, each with its own Postgres and HTTP connections and
//   its own products), committing in whatever order their transactions end.
// --hold-every K --hold-ms T: every K-th update of writer 0 holds its transaction open for T ms
//   after the UPDATE (a long-running writer); the others' latency while one is open is reported
//   apart: the cost of a held-open transaction on other purges.
// A change not fresh 10 s after its commit is counted as never fresh (it must be 0). Polls are
// 0.25 ms apart (the resolution), so that eight pollers leave the feed its share of two cores.
// --listing: instead, the freshness of a precomputed listing page after a change of one of its
//   products (the cheapest product of category 1 made one cent cheaper, once a second).
import Foundation
import Logging
import NIOCore
import NIOPosix
import PostgresNIO
import Synchronization

struct Options {
    var proxyHost = "127.0.0.1"
    var proxyPort = 8080
    var postgres = "postgres://postgres@127.0.0.1:5432/postgres"
    var updates = 1_000
    var products = 50
    var writers = 1
    var holdEvery = 0
    var holdMilliseconds = 1_000
    var listing = false

    init(_ arguments: [String]) {
        var iterator = arguments.dropFirst().makeIterator()
        while let argument = iterator.next() {
            if argument == "--listing" {
                listing = true
                continue
            }
            let value = iterator.next() ?? ""
            switch argument {
            case "--proxy":
                let parts = value.split(separator: ":")
                proxyHost = String(parts[0])
                proxyPort = parts.count > 1 ? Int(parts[1]) ?? 8080 : 8080
            case "--postgres": postgres = value
            case "--updates": updates = Int(value) ?? updates
            case "--products": products = Int(value) ?? products
            case "--writers": writers = max(1, Int(value) ?? writers)
            case "--hold-every": holdEvery = Int(value) ?? holdEvery
            case "--hold-ms": holdMilliseconds = Int(value) ?? holdMilliseconds
            default:
                FileHandle.standardError.write(Data("unknown option \(argument)\n".utf8))
                exit(2)
            }
        }
    }
}

/// One keep-alive HTTP/1.1 connection, blocking: the poller is the only thing running here.
final class HTTPConnection {
    private let socket: Int32
    private var buffer: [UInt8] = []

    init(host: String, port: Int) throws {
        socket = Glibc.socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
        var address = sockaddr_in()
        address.sin_family = sa_family_t(AF_INET)
        address.sin_port = in_port_t(UInt16(port).bigEndian)
        inet_pton(AF_INET, host, &address.sin_addr)
        let connected = withUnsafePointer(to: &address) {
            $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { connect(socket, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
        }
        guard connected == 0 else { throw MeasureError("cannot connect to \(host):\(port)") }
        var one: Int32 = 1
        setsockopt(socket, Int32(IPPROTO_TCP), TCP_NODELAY, &one, socklen_t(MemoryLayout<Int32>.size))
    }

    deinit { close(socket) }

    /// GET `target`; returns status, X-Cache and body.
    func get(_ target: String) throws -> (status: Int, xCache: String, body: String) {
        let request = Array("GET \(target) HTTP/1.1\r\nHost: shop.test\r\n\r\n".utf8)
        guard write(socket, request, request.count) == request.count else { throw MeasureError("write failed") }
        while true {
            if let end = headEnd() {
                let head = String(decoding: buffer[..<end], as: UTF8.self)
                let lines = head.split(separator: "\r\n")
                let status = Int(lines.first?.split(separator: " ").dropFirst().first ?? "") ?? 0
                var length = 0
                var xCache = ""
                for line in lines.dropFirst() {
                    let parts = line.split(separator: ":", maxSplits: 1)
                    guard parts.count == 2 else { continue }
                    let name = parts[0].lowercased()
                    let value = parts[1].trimmingCharacters(in: .whitespaces)
                    if name == "content-length" { length = Int(value) ?? 0 }
                    if name == "x-cache" { xCache = value }
                }
                let bodyStart = end + 4
                while buffer.count < bodyStart + length { try fill() }
                let body = String(decoding: buffer[bodyStart..<(bodyStart + length)], as: UTF8.self)
                buffer.removeFirst(bodyStart + length)
                return (status, xCache, body)
            }
            try fill()
        }
    }

    private func headEnd() -> Int? {
        guard buffer.count >= 4 else { return nil }
        for index in 0...(buffer.count - 4)
        where buffer[index] == 13 && buffer[index + 1] == 10 && buffer[index + 2] == 13 && buffer[index + 3] == 10 {
            return index
        }
        return nil
    }

    private func fill() throws {
        var chunk = [UInt8](repeating: 0, count: 65_536)
        let count = read(socket, &chunk, chunk.count)
        guard count > 0 else { throw MeasureError("connection closed") }
        buffer.append(contentsOf: chunk[..<count])
    }
}

struct MeasureError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}

func percentile(_ sorted: [Double], _ p: Double) -> Double {
    guard !sorted.isEmpty else { return .nan }
    return sorted[min(sorted.count - 1, max(0, Int((Double(sorted.count) * p).rounded(.up)) - 1))]
}

func milliseconds(_ duration: Duration) -> Double {
    Double(duration.components.seconds) * 1_000 + Double(duration.components.attoseconds) / 1e15
}

func ms(_ value: Double) -> String { String(format: "%.2f ms", value) }

let options = Options(CommandLine.arguments)
let logger: Logger = {
    var logger = Logger(label: "commit-to-fresh")
    logger.logLevel = .error
    return logger
}()
guard let url = URLComponents(string: options.postgres), let host = url.host else {
    FileHandle.standardError.write(Data("--postgres: expected postgres://user@host:port/database\n".utf8))
    exit(2)
}
let configuration = PostgresConnection.Configuration(
    host: host, port: url.port ?? 5432, username: url.user ?? "postgres", password: url.password,
    database: String(url.path.dropFirst()), tls: .disable)
let group = MultiThreadedEventLoopGroup(numberOfThreads: 1)

/// A Postgres connection used from a plain thread: each call waits for its answer.
@Sendable func connectBlocking(id: Int) throws -> PostgresConnection {
    try PostgresConnection.connect(on: group.next(), configuration: configuration, id: id, logger: logger).wait()
}

/// What the writers measured.
final class Results: Sendable {
    struct Values {
        var latencies: [Double] = []
        /// Latencies of changes committed while a held transaction was open (other writers').
        var duringHold: [Double] = []
        var held: [Double] = []
        var neverFresh = 0
        var polls = 0
    }
    let values = Mutex(Values())
    /// How many held transactions are open now.
    let holdsOpen = Atomic<Int>(0)
    let done = Atomic<Int>(0)
}

let clock = ContinuousClock()
let base = Int(Date().timeIntervalSince1970) % 100_000 * 10

/// Writer `index` of `count`: its products are those whose id leaves `index` modulo `count`.
@Sendable func runWriter(_ index: Int, count: Int, updates: Int, results: Results) throws {
    let connection = try connectBlocking(id: index + 1)
    defer { try? connection.close().wait() }
    let http = try HTTPConnection(host: options.proxyHost, port: options.proxyPort)
    let mine = (1...max(options.products, count)).filter { ($0 - 1) % count == index }
    for update in 1...updates {
        let id = mine[update % mine.count]
        let target = "/catalog/products/\(id)"
        // Cached before the change: the measure is of purging, not of a first fetch.
        for _ in 0..<3 where try http.get(target).xCache != "HIT" {}
        let price = base + update * count + index
        let holds = index == 0 && options.holdEvery > 0 && update % options.holdEvery == 0
        if holds {
            results.holdsOpen.add(1, ordering: .relaxed)
            defer { results.holdsOpen.subtract(1, ordering: .relaxed) }
            for statement in [
                "BEGIN", "UPDATE products SET price_cents = \(price) WHERE id = \(id)",
                "SELECT pg_sleep(\(Double(options.holdMilliseconds) / 1000))", "COMMIT",
            ] {
                _ = try connection.simpleQuery(statement).wait()
            }
        } else {
            _ = try connection.simpleQuery("UPDATE products SET price_cents = \(price) WHERE id = \(id)").wait()
        }
        let committed = clock.now
        let duringHold = !holds && results.holdsOpen.load(ordering: .relaxed) > 0
        let expected = "\"price_cents\":\(price),"
        var polls = 0
        var fresh = false
        while clock.now - committed < .seconds(10) {
            polls += 1
            let response = try http.get(target)
            if response.status == 200 && response.body.contains(expected) {
                fresh = true
                break
            }
            // Polling without a pause would take the cores the feed needs (8 writers, 2 cores):
            // a quarter of a millisecond is the measure's resolution.
            usleep(250)
        }
        let elapsed = milliseconds(clock.now - committed)
        results.values.withLock { values in
            values.polls += polls
            guard fresh else {
                values.neverFresh += 1
                return
            }
            if holds { values.held.append(elapsed) } else { values.latencies.append(elapsed) }
            if duringHold { values.duringHold.append(elapsed) }
        }
        let done = results.done.add(1, ordering: .relaxed).newValue
        if done % 100 == 0 { FileHandle.standardError.write(Data("\r\(done)/\(options.updates) updates".utf8)) }
    }
}

/// The cheapest product of a category's first listing page, one cent cheaper each round: it stays
/// on the page, and the page is fresh once it shows the new price.
func measureListing() throws {
    let connection = try connectBlocking(id: 1)
    defer { try? connection.close().wait() }
    let http = try HTTPConnection(host: options.proxyHost, port: options.proxyPort)
    let target = "/catalog/categories/1/products?sort=price_asc&page=1"
    var latencies: [Double] = []
    for round in 1...options.updates {
        // Quiet between changes: each is a single change, not part of a burst.
        Thread.sleep(forTimeInterval: 1)
        let page = try http.get(target)
        guard page.xCache == "HIT", let id = firstNumber(after: "\"id\":", in: page.body),
            let price = firstNumber(after: "\"price_cents\":", in: page.body)
        else { throw MeasureError("no listing at \(target): \(page.status) \(page.xCache)") }
        let newPrice = max(1, price - 1)
        _ = try connection.simpleQuery("UPDATE products SET price_cents = \(newPrice) WHERE id = \(id)").wait()
        let committed = clock.now
        while true {
            let response = try http.get(target)
            if response.body.contains("\"price_cents\":\(newPrice),") { break }
            usleep(250)
            guard clock.now - committed < .seconds(10) else { throw MeasureError("listing still stale 10 s after a change") }
        }
        latencies.append(milliseconds(clock.now - committed))
        FileHandle.standardError.write(Data("\r\(round)/\(options.updates) changes".utf8))
    }
    FileHandle.standardError.write(Data("\n".utf8))
    let sorted = latencies.sorted()
    print("listing freshness after a single change, over \(sorted.count) changes (\(target)):")
    print("  p50 \(ms(percentile(sorted, 0.5)))  p90 \(ms(percentile(sorted, 0.9)))  p99 \(ms(percentile(sorted, 0.99)))  max \(ms(sorted.last ?? .nan))")
}

@Sendable func firstNumber(after marker: String, in text: String) -> Int? {
    guard let range = text.range(of: marker) else { return nil }
    return Int(text[range.upperBound...].prefix { $0.isNumber })
}

if options.listing {
    try measureListing()
    exit(0)
}

let results = Results()
let failures = Mutex<[String]>([])
var threads: [Thread] = []
let finished = DispatchGroup()
for writer in 0..<options.writers {
    let share = options.updates / options.writers + (writer < options.updates % options.writers ? 1 : 0)
    guard share > 0 else { continue }
    finished.enter()
    let thread = Thread {
        do { try runWriter(writer, count: options.writers, updates: share, results: results) } catch {
            failures.withLock { $0.append("writer \(writer): \(error)") }
        }
        finished.leave()
    }
    threads.append(thread)
    thread.start()
}
finished.wait()
FileHandle.standardError.write(Data("\n".utf8))
for failure in failures.withLock({ $0 }) { FileHandle.standardError.write(Data("\(failure)\n".utf8)) }
try group.syncShutdownGracefully()

let values = results.values.withLock { $0 }
let sorted = values.latencies.sorted()
print("commit-to-fresh over \(sorted.count + values.held.count) updates (\(options.writers) writers, \(options.products) products, \(values.polls) polling GETs):")
print("  p50 \(ms(percentile(sorted, 0.5)))  p90 \(ms(percentile(sorted, 0.9)))  p99 \(ms(percentile(sorted, 0.99)))  max \(ms(sorted.last ?? .nan))")
print("  never fresh: \(values.neverFresh)")
if options.holdEvery > 0 {
    let during = values.duringHold.sorted()
    print("  while a transaction was held open \(options.holdMilliseconds) ms: \(during.count) other updates, p50 \(ms(percentile(during, 0.5)))  p99 \(ms(percentile(during, 0.99)))")
    let held = values.held.sorted()
    print("  the held transactions themselves (\(held.count)), from commit: p50 \(ms(percentile(held, 0.5)))  max \(ms(held.last ?? .nan))")
}
if !failures.withLock({ $0.isEmpty }) || values.neverFresh > 0 { exit(1) }
