// Commit-to-fresh latency: commits an UPDATE of a product's price in Postgres, then polls the
// product through the proxy until the new price shows; repeats, and prints percentiles.
//
//   vitrine demo --postgres postgres://USER@127.0.0.1:5432/DB      # in another shell
//   swift run -c release --package-path Benchmarks commit-to-fresh \
//       --proxy 127.0.0.1:8080 --postgres postgres://USER@127.0.0.1:5432/DB --updates 1000
//
// The clock starts when the UPDATE's commit is acknowledged and stops at the first response
// through the proxy that shows the new price. Every product is cached (a HIT) before its update.
import Foundation
import Logging
import PostgresNIO

struct Options {
    var proxyHost = "127.0.0.1"
    var proxyPort = 8080
    var postgres = "postgres://postgres@127.0.0.1:5432/postgres"
    var updates = 1_000
    var products = 50

    init(_ arguments: [String]) {
        var iterator = arguments.dropFirst().makeIterator()
        while let argument = iterator.next() {
            let value = iterator.next() ?? ""
            switch argument {
            case "--proxy":
                let parts = value.split(separator: ":")
                proxyHost = String(parts[0])
                proxyPort = parts.count > 1 ? Int(parts[1]) ?? 8080 : 8080
            case "--postgres": postgres = value
            case "--updates": updates = Int(value) ?? updates
            case "--products": products = Int(value) ?? products
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
    sorted[min(sorted.count - 1, Int((Double(sorted.count) * p).rounded(.up)) - 1)]
}

let options = Options(CommandLine.arguments)
var logger = Logger(label: "commit-to-fresh")
logger.logLevel = .error
guard let url = URLComponents(string: options.postgres), let host = url.host else {
    FileHandle.standardError.write(Data("--postgres: expected postgres://user@host:port/database\n".utf8))
    exit(2)
}
let configuration = PostgresConnection.Configuration(
    host: host, port: url.port ?? 5432, username: url.user ?? "postgres", password: url.password,
    database: String(url.path.dropFirst()), tls: .disable)
let connection = try await PostgresConnection.connect(configuration: configuration, id: 1, logger: logger)
let http = try HTTPConnection(host: options.proxyHost, port: options.proxyPort)

var latencies: [Double] = []
var polls = 0
let clock = ContinuousClock()
let base = Int(Date().timeIntervalSince1970) % 100_000 * 10
for update in 1...options.updates {
    let id = 1 + update % options.products
    let target = "/catalog/products/\(id)"
    // Cached before the change: the measure is of purging, not of a first fetch.
    for _ in 0..<3 where try http.get(target).xCache != "HIT" {}
    let price = base + update
    _ = try await connection.query("UPDATE products SET price_cents = \(price) WHERE id = \(id)", logger: logger).collect()
    let committed = clock.now
    let expected = "\"price_cents\":\(price),"
    while true {
        polls += 1
        let response = try http.get(target)
        if response.status == 200 && response.body.contains(expected) { break }
        guard clock.now - committed < .seconds(10) else { throw MeasureError("product \(id) still stale 10 s after its commit") }
    }
    let elapsed = clock.now - committed
    latencies.append(Double(elapsed.components.attoseconds) / 1e15 + Double(elapsed.components.seconds) * 1_000)
    if update % 100 == 0 {
        FileHandle.standardError.write(Data("\r\(update)/\(options.updates) updates".utf8))
    }
}
FileHandle.standardError.write(Data("\n".utf8))
try await (connection.close() as EventLoopFuture<Void>).get()

let sorted = latencies.sorted()
func ms(_ value: Double) -> String { String(format: "%.2f ms", value) }
print("commit-to-fresh over \(sorted.count) updates (\(options.products) products, \(polls) polling GETs):")
print("  p50 \(ms(percentile(sorted, 0.5)))  p90 \(ms(percentile(sorted, 0.9)))  p99 \(ms(percentile(sorted, 0.99)))  max \(ms(sorted.last!))")
