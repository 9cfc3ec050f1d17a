import Logging
import NIOCore
import NIOEmbedded
import NIOHTTP1
import Testing
import VitrineConfig
import VitrineCore
@testable import VitrineProxy

/// The connection handler on an `EmbeddedChannel`: bytes in, bytes out, no sockets.
@Suite struct ClientConnectionHandlerTests {
    final class Harness {
        let channel = EmbeddedChannel()
        let context: ProxyContext
        let store: ResponseStore

        init() throws {
            var configuration = VitrineConfiguration.demo(
                origin: OriginURL(parsing: "http://127.0.0.1:9")!, port: 0, adminPort: 0, token: "unused-token-0123456789")
            configuration.limits.maxHeaders = 10
            let store = ResponseStore(byteBudget: 1 << 20, shardCount: 2, clock: ManualClock())
            let stats = ProxyStats()
            let metrics = ProxyMetrics()
            let routes = Reloadable(Router(configuration: configuration, group: channel.embeddedEventLoop))
            context = ProxyContext(
                store: store, routes: routes,
                invalidator: Invalidator(store: store, routes: routes, stats: stats, metrics: metrics), stats: stats, metrics: metrics,
                configuration: configuration, logger: Logger(label: "test"))
            self.store = store
            let listings = Listings(
                settings: ListingsSettings(), fetcher: ListingFetcher(proxy: context), clock: ManualClock(), logger: Logger(label: "test"))
            try channel.pipeline.syncOperations.addHandler(ClientConnectionHandler(proxy: context, listings: Reloadable(listings)))
            try channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 1)).wait()
        }

        func preload(_ target: String, body: String, tags: [String] = []) {
            var headers = HTTPHeaders()
            headers.add(name: "Content-Type", value: "application/json")
            headers.add(name: "ETag", value: "\"v1\"")
            let response = CachedResponse(status: .ok, headers: headers, body: ByteBuffer(string: body), initialAge: 3, tags: tags)
            store.store(response, for: CacheKey(target), tags: tags, ttl: .seconds(100), token: store.fetchToken())
        }

        func send(_ text: String) throws {
            try channel.writeInbound(ByteBuffer(string: text))
        }

        /// Everything written to the socket so far, as text.
        func output() throws -> String {
            var text = ""
            while let buffer = try channel.readOutbound(as: ByteBuffer.self) { text += String(buffer: buffer) }
            return text
        }
    }

    @Test func hitIsWrittenFromStoredBytes() throws {
        let harness = try Harness()
        harness.preload("/catalog/products/1", body: #"{"id":1}"#)
        try harness.send("GET /catalog/products/1 HTTP/1.1\r\nHost: x\r\n\r\n")
        let output = try harness.output()
        #expect(output.hasPrefix("HTTP/1.1 200 OK\r\n"))
        #expect(output.contains("Content-Length: 8\r\n"))
        #expect(output.contains("Age: 3\r\n"))
        #expect(output.contains("Cache-Status: vitrine; hit; ttl=100\r\n"))
        #expect(output.contains("X-Cache: HIT\r\n"))
        #expect(output.hasSuffix("\r\n\r\n{\"id\":1}"))
        #expect(harness.channel.isActive)
    }

    @Test func pipelinedHitsComeBackInOrderInOneFlush() throws {
        let harness = try Harness()
        for id in 1...3 { harness.preload("/catalog/products/\(id)", body: "{\"id\":\(id)}") }
        try harness.send((1...3).map { "GET /catalog/products/\($0) HTTP/1.1\r\nHost: x\r\n\r\n" }.joined())
        let output = try harness.output()
        let ids = output.components(separatedBy: "{\"id\":").dropFirst().map { $0.prefix(1) }
        #expect(ids == ["1", "2", "3"])
    }

    @Test func headGetsNoBodyAndConnectionCloseIsHonoured() throws {
        let harness = try Harness()
        harness.preload("/catalog/products/1", body: #"{"id":1}"#)
        try harness.send("HEAD /catalog/products/1 HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n")
        let output = try harness.output()
        #expect(output.contains("Content-Length: 8\r\n"))
        #expect(output.contains("Connection: close\r\n"))
        #expect(output.hasSuffix("\r\n\r\n"))
        #expect(!harness.channel.isActive)
    }

    @Test func ifNoneMatchGets304FromCache() throws {
        let harness = try Harness()
        harness.preload("/catalog/products/1", body: #"{"id":1}"#)
        try harness.send("GET /catalog/products/1 HTTP/1.1\r\nHost: x\r\nIf-None-Match: \"v0\", W/\"v1\"\r\n\r\n")
        let output = try harness.output()
        #expect(output.hasPrefix("HTTP/1.1 304 Not Modified\r\n"))
        #expect(output.contains("ETag: \"v1\"\r\n"))
        #expect(!output.contains("{\"id\""))
    }

    @Test func tooManyHeadersIs431AndCloses() throws {
        let harness = try Harness()
        let headers = (0..<12).map { "X-\($0): y\r\n" }.joined()
        try harness.send("GET /catalog/products/1 HTTP/1.1\r\nHost: x\r\n\(headers)\r\n")
        let output = try harness.output()
        #expect(output.hasPrefix("HTTP/1.1 431"))
        #expect(output.contains("Connection: close\r\n"))
        #expect(!harness.channel.isActive)
    }

    @Test func unknownPathIsAJSON404AndKeepsTheConnection() throws {
        let harness = try Harness()
        try harness.send("GET /elsewhere HTTP/1.1\r\nHost: x\r\n\r\n")
        let output = try harness.output()
        #expect(output.hasPrefix("HTTP/1.1 404"))
        #expect(output.hasSuffix(#"{"error":"no_route","message":"no route for this path"}"#))
        #expect(harness.channel.isActive)
    }

    @Test func garbageIs400AndCloses() throws {
        let harness = try Harness()
        try harness.send("\u{1}\u{2} nonsense\r\n\r\n")
        let output = try harness.output()
        #expect(output.hasPrefix("HTTP/1.1 400"))
        #expect(!harness.channel.isActive)
    }
}
