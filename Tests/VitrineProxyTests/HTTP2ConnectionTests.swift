import NIOCore
import NIOEmbedded
import NIOHPACK
import NIOHTTP1
import NIOHTTP2
import Testing
import VitrineConfig
import VitrineCore
@testable import VitrineProxy

extension ClientConnectionHandlerTests.Harness {
    /// An HTTP/2 connection to the same proxy, on the same event loop, after swift-nio-http2's
    /// handler: frames in and out.
    func http2Connection() throws -> EmbeddedChannel {
        let channel = EmbeddedChannel(loop: self.channel.embeddedEventLoop)
        let listings = Listings(settings: ListingsSettings(), fetcher: ListingFetcher(proxy: context), clock: ManualClock(), logger: .init(label: "test"))
        try channel.pipeline.syncOperations.addHandler(HTTP2Connection(proxy: context, listings: Reloadable(listings), proxyHeader: nil))
        try channel.connect(to: SocketAddress(ipAddress: "127.0.0.1", port: 3)).wait()
        return channel
    }

    /// Stores a response for `target` as an https request keys it (the TLS listener's).
    func preloadHTTPS(_ target: String, body: String) {
        var headers = HTTPHeaders()
        headers.add(name: "Content-Type", value: "application/json")
        headers.add(name: "ETag", value: "\"v1\"")
        let response = CachedResponse(status: .ok, headers: headers, body: ByteBuffer(string: body), initialAge: 3, tags: [])
        store.store(response, for: VaryKey.httpsKey(CacheKey(target)), tags: [], ttl: .seconds(100), token: store.fetchToken())
    }
}

/// HTTP/2 streams in their connection's state, on an embedded channel: frames in, the request
/// path, frames out; no HTTP/1.1 anywhere between, no channel per stream.
@Suite struct HTTP2ConnectionTests {
    static let get = HPACKHeaders([(":method", "GET"), (":path", "/catalog/products/7"), (":scheme", "https"), (":authority", "shop.example")])

    /// The frames written on stream `id` (the connection's own, on the root stream, left out).
    static func frames(_ channel: EmbeddedChannel, on id: HTTP2StreamID = 1) throws -> [HTTP2Frame.FramePayload] {
        var frames: [HTTP2Frame.FramePayload] = []
        while let frame = try channel.readOutbound(as: HTTP2Frame.self) {
            if frame.streamID == id { frames.append(frame.payload) }
        }
        return frames
    }

    static func send(_ payload: HTTP2Frame.FramePayload, on channel: EmbeddedChannel, stream id: HTTP2StreamID = 1) throws {
        try channel.writeInbound(HTTP2Frame(streamID: id, payload: payload))
    }

    static func head(_ fields: [(String, String)], endStream: Bool = true) -> HTTPRequestHead? {
        HTTP2RequestFields.requestHead(HPACKHeaders(fields), endStream: endStream, limits: LimitSettings())
    }

    @Test func aStreamsFieldsBecomeTheRequestHead() throws {
        let fields = Array(Self.get).map { ($0.name, $0.value) }
        let head = try #require(Self.head(fields + [("cookie", "a=1"), ("accept", "application/json"), ("cookie", "b=2")]))
        #expect(head.method == .GET && head.uri == "/catalog/products/7")
        #expect(Array(head.headers.map { "\($0.name): \($0.value)" }) == ["host: shop.example", "accept: application/json", "cookie: a=1; b=2"])
        // Transfer-Encoding, Connection and a second Host never pass: framing is the stream's.
        let cleaned = try #require(Self.head(fields + [("transfer-encoding", "chunked"), ("connection", "close"), ("host", "evil.example")]))
        #expect(Array(cleaned.headers.map { $0.name }) == ["host"] && cleaned.headers["host"] == ["shop.example"])
        // A body without a length: the request path reads it as one of unknown length.
        let post = try #require(Self.head([(":method", "POST"), (":path", "/cart"), (":authority", "shop.example")], endStream: false))
        #expect(post.headers["transfer-encoding"] == ["chunked"])
        let sized = try #require(
            Self.head([(":method", "POST"), (":path", "/cart"), (":authority", "shop.example"), ("content-length", "2")], endStream: false))
        #expect(sized.headers["transfer-encoding"].isEmpty && sized.headers["content-length"] == ["2"])
    }

    @Test func aMalformedRequestIsRefused() {
        let fields = Array(Self.get).map { ($0.name, $0.value) }
        let broken = [
            ("x-a", "1\r\ncontent-length: 5"), ("x-b", "nul\u{0}"), ("x\nc", "1"), ("transfer-encoding:chunked", "x"), ("X-Upper", "1"),
            (":unknown", "1"), (":path", "/second"), ("content-length", "1x"), ("content-length", "99999999999999999999"),
        ]
        for (name, value) in broken { #expect(Self.head(fields + [(name, value)]) == nil, "\(name): \(value)") }
        #expect(Self.head([(":method", "GET"), (":path", "*"), (":authority", "shop.example")]) == nil, "a path as target")
        #expect(Self.head([(":method", "CONNECT"), (":path", "/"), (":authority", "shop.example")]) == nil)
        #expect(Self.head([(":method", "GET"), (":path", "/"), (":authority", "bad host")]) == nil)
        #expect(Self.head([(":method", "GET"), (":path", "/")]) == nil, "no host")
        #expect(Self.head([("accept", "*/*"), (":method", "GET"), (":path", "/"), (":authority", "a")]) == nil, "pseudo-headers first")
    }

    @Test func aMalformedStreamIsResetAndNothingIsServed() throws {
        let harness = try ClientConnectionHandlerTests.Harness()
        let stream = try harness.http2Connection()
        var fields = Self.get
        fields.add(name: "x-a", value: "1\r\nx: y")
        try Self.send(.headers(.init(headers: fields, endStream: true)), on: stream)
        guard case .rstStream(.protocolError) = try Self.frames(stream).first else {
            Issue.record("the stream must be reset")
            return
        }
        #expect(harness.context.stats.value(.requests) == 0)
    }

    @Test func aHitIsOneHEADERSAndOneDATAWithEndStreamFromTheStoredBytes() throws {
        let harness = try ClientConnectionHandlerTests.Harness()
        harness.preloadHTTPS("/catalog/products/7", body: #"{"id":7}"#)
        let stream = try harness.http2Connection()
        try Self.send(.headers(.init(headers: Self.get, endStream: true)), on: stream)
        let written = try Self.frames(stream)
        guard written.count == 2, case .headers(let head) = written[0], case .data(let data) = written[1], case .byteBuffer(let body) = data.data
        else {
            Issue.record("a head and a body: \(written)")
            return
        }
        #expect(head.headers[":status"] == ["200"] && head.headers["etag"] == ["\"v1\""] && head.headers["content-length"] == ["8"])
        #expect(head.headers["age"] == ["3"] && head.headers["x-cache"] == ["HIT"] && head.headers["cache-status"] == ["vitrine; hit; ttl=100"])
        #expect(!head.endStream && data.endStream, "END_STREAM on the last DATA frame")
        #expect(String(buffer: body) == #"{"id":7}"#)
        // The stored body goes as it is: the same storage, not a copy.
        let stored = try #require(harness.store.lookup(VaryKey.httpsKey(CacheKey("/catalog/products/7"))).hit?.value.body)
        #expect(body.withUnsafeReadableBytes { $0.baseAddress } == stored.withUnsafeReadableBytes { $0.baseAddress })
    }

    @Test func aHEADOr304IsOneHEADERSThatEndsTheStream() throws {
        let harness = try ClientConnectionHandlerTests.Harness()
        harness.preloadHTTPS("/catalog/products/7", body: #"{"id":7}"#)
        let stream = try harness.http2Connection()
        var head = Self.get
        head.replaceOrAdd(name: ":method", value: "HEAD")
        try Self.send(.headers(.init(headers: head, endStream: true)), on: stream)
        var written = try Self.frames(stream)
        guard written.count == 1, case .headers(let fields) = written[0] else {
            Issue.record("one HEADERS: \(written)")
            return
        }
        #expect(fields.endStream && fields.headers["content-length"] == ["8"])

        let conditional = try harness.http2Connection()
        var get = Self.get
        get.add(name: "if-none-match", value: "\"v1\"")
        try Self.send(.headers(.init(headers: get, endStream: true)), on: conditional)
        written = try Self.frames(conditional)
        guard written.count == 1, case .headers(let notModified) = written[0] else {
            Issue.record("one HEADERS: \(written)")
            return
        }
        #expect(notModified.endStream && notModified.headers[":status"] == ["304"] && notModified.headers["etag"] == ["\"v1\""])
    }

    @Test func theProxysOwnErrorEndsTheStream() throws {
        let harness = try ClientConnectionHandlerTests.Harness()
        let stream = try harness.http2Connection()
        var fields = Self.get
        fields.replaceOrAdd(name: ":path", value: "/nowhere")
        try Self.send(.headers(.init(headers: fields, endStream: true)), on: stream)
        let written = try Self.frames(stream)
        guard written.count == 2, case .headers(let head) = written[0], case .data(let data) = written[1] else {
            Issue.record("a head and a body: \(written)")
            return
        }
        #expect(head.headers[":status"] == ["404"] && head.headers["content-type"] == ["application/json"] && data.endStream)
        #expect(stream.isActive, "an error ends the stream, not the connection")
    }
}
