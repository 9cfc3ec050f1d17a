import Foundation
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
        let channel: EmbeddedChannel
        let context: ProxyContext
        let store: ResponseStore

        init(tier: (any SharedTier)? = nil, loop: EmbeddedEventLoop = EmbeddedEventLoop()) throws {
            channel = EmbeddedChannel(loop: loop)
            var configuration = VitrineConfiguration.demo(
                origin: OriginURL(parsing: "http://127.0.0.1:9")!, port: 0, adminPort: 0, token: "unused-token-0123456789")
            configuration.limits.maxHeaders = 10
            let store = ResponseStore(byteBudget: 1 << 20, shardCount: 2, clock: ManualClock())
            let stats = ProxyStats()
            let metrics = ProxyMetrics()
            let routes = Reloadable(Router(configuration: configuration, group: channel.embeddedEventLoop))
            context = ProxyContext(
                store: store, routes: routes,
                invalidator: Invalidator(store: store, routes: routes, stats: stats, metrics: metrics, tier: tier), stats: stats, metrics: metrics,
                configuration: configuration, logger: Logger(label: "test"))
            self.store = store
            let listings = Listings(
                settings: ListingsSettings(), fetcher: ListingFetcher(proxy: context), clock: ManualClock(), logger: Logger(label: "test"))
            try channel.pipeline.syncOperations.addHandler(ClientConnectionHandler(proxy: context, listings: Reloadable(listings)))
            try channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 1)).wait()
        }

        /// Another connection to the same proxy, on the same event loop.
        func connection() throws -> EmbeddedChannel {
            let channel = EmbeddedChannel(loop: self.channel.embeddedEventLoop)
            let listings = Listings(
                settings: ListingsSettings(), fetcher: ListingFetcher(proxy: context), clock: ManualClock(), logger: Logger(label: "test"))
            try channel.pipeline.syncOperations.addHandler(ClientConnectionHandler(proxy: context, listings: Reloadable(listings)))
            try channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 2)).wait()
            return channel
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

    /// A shared tier whose lookups are answered when the test says, as Redis's replies arrive
    /// after the request's read is over.
    final class HeldTier: SharedTier, @unchecked Sendable {
        var state: String { "up" }
        var shards: [SharedTierShard] { [] }
        private(set) var lookups: [EventLoopPromise<SharedTierLookup?>] = []

        func lookup(_ key: CacheKey, lease: Duration?, on loop: any EventLoop) -> EventLoopFuture<SharedTierLookup?> {
            let promise = loop.makePromise(of: SharedTierLookup?.self)
            lookups.append(promise)
            return promise.futureResult
        }
        func releaseLease(_ key: CacheKey, on loop: any EventLoop) {}
        func store(_ key: CacheKey, entry: L2Entry, extraTags: [String], sequence: Int64, ttl: Duration, on loop: any EventLoop) {}
        func purge(_ request: PurgeRequest, keys: [CacheKey], implicitTags: [String], on loop: any EventLoop) -> EventLoopFuture<Void> {
            loop.makeSucceededVoidFuture()
        }

        static func entry(_ body: String) -> L2Entry {
            L2Entry(
                isVaryMarker: false, status: .ok, initialAge: 0, storedAt: Int(Date().timeIntervalSince1970), ttlMilliseconds: 60_000,
                retentionMilliseconds: 0, staleWhileRevalidateMilliseconds: 0, staleIfErrorMilliseconds: 0, varyFields: [], variantID: "",
                tags: [], headers: ["Content-Type": "application/json"], body: ByteBuffer(string: body), gzipBody: nil)
        }
    }

    @Test func answersFromTheSharedTierAreFlushedTogetherOnceTheLoopHasHandledTheReply() throws {
        // One Redis read answers many lookups. Their answers are written as they are made, and
        // flushed once the event loop has handled everything that was ready: back to back, not
        // a socket write between each one's work.
        let tier = HeldTier()
        let harness = try Harness(tier: tier)
        let other = try harness.connection()
        try harness.send("GET /catalog/products/1 HTTP/1.1\r\nHost: x\r\n\r\n")
        try other.writeInbound(ByteBuffer(string: "GET /catalog/products/2 HTTP/1.1\r\nHost: x\r\n\r\n"))
        #expect(tier.lookups.count == 2)
        for (index, lookup) in tier.lookups.enumerated() {
            lookup.succeed(SharedTierLookup(entry: HeldTier.entry("{\"id\":\(index + 1)}"), sequence: 1))
        }
        // Written, not yet flushed: nothing has reached either socket.
        #expect(try harness.output().isEmpty)
        #expect(try other.readOutbound(as: ByteBuffer.self) == nil)
        harness.channel.embeddedEventLoop.run()
        let first = try harness.output()
        #expect(first.hasPrefix("HTTP/1.1 200 OK\r\n"))
        #expect(first.hasSuffix("{\"id\":1}"))
        var second = ""
        while let buffer = try other.readOutbound(as: ByteBuffer.self) { second += String(buffer: buffer) }
        #expect(second.hasPrefix("HTTP/1.1 200 OK\r\n"))
        #expect(second.hasSuffix("{\"id\":2}"))
        // Kept in L1: the next request is a hit, answered (and flushed) in its own read.
        try harness.send("GET /catalog/products/1 HTTP/1.1\r\nHost: x\r\n\r\n")
        #expect(try harness.output().contains("X-Cache: HIT\r\n"))
        #expect(tier.lookups.count == 2)
    }
}
