import NIOCore
import NIOEmbedded
import NIOHPACK
import NIOHTTP2
import Testing
@testable import VitrineProxy

/// The adapter between an HTTP/2 stream and the HTTP/1.1 request path, on an embedded channel:
/// what reaches the request path from frames, and what frames its HTTP/1.1 answer makes.
@Suite struct HTTP2StreamAdapterTests {
    func channel() throws -> EmbeddedChannel {
        let channel = EmbeddedChannel()
        try channel.pipeline.syncOperations.addHandler(HTTP2StreamAdapter(proxyHeader: nil))
        return channel
    }

    func request(_ channel: EmbeddedChannel) throws -> String {
        var text = ""
        while let buffer = try channel.readInbound(as: ByteBuffer.self) { text += String(buffer: buffer) }
        return text
    }

    func frames(_ channel: EmbeddedChannel) throws -> [HTTP2Frame.FramePayload] {
        var frames: [HTTP2Frame.FramePayload] = []
        while let frame = try channel.readOutbound(as: HTTP2Frame.FramePayload.self) { frames.append(frame) }
        return frames
    }

    static let get = HPACKHeaders([(":method", "GET"), (":path", "/catalog/products/7"), (":scheme", "https"), (":authority", "shop.example")])

    /// A channel that was sent `Self.get` with `extra` fields, as one HEADERS that ends the stream.
    func channel(gettingWith extra: [(String, String)]) throws -> EmbeddedChannel {
        let channel = try channel()
        var fields = Self.get
        for (name, value) in extra { fields.add(name: name, value: value) }
        try channel.writeInbound(HTTP2Frame.FramePayload.headers(.init(headers: fields, endStream: true)))
        return channel
    }

    @Test func aRequestBecomesTheHTTP1BytesTheDecoderReads() throws {
        let channel = try channel(gettingWith: [("cookie", "a=1"), ("accept", "application/json"), ("cookie", "b=2")])
        #expect(try request(channel) == "GET /catalog/products/7 HTTP/1.1\r\nhost: shop.example\r\naccept: application/json\r\ncookie: a=1; b=2\r\n\r\n")
    }

    @Test func aBodyWithoutALengthIsChunkedByTheStreamsFrames() throws {
        let channel = try channel()
        let post = HPACKHeaders([(":method", "POST"), (":path", "/cart"), (":scheme", "https"), (":authority", "shop.example")])
        try channel.writeInbound(HTTP2Frame.FramePayload.headers(.init(headers: post)))
        try channel.writeInbound(HTTP2Frame.FramePayload.data(.init(data: .byteBuffer(ByteBuffer(string: "{\"a\":1}")))))
        try channel.writeInbound(HTTP2Frame.FramePayload.data(.init(data: .byteBuffer(ByteBuffer()), endStream: true)))
        #expect(try request(channel) == "POST /cart HTTP/1.1\r\nhost: shop.example\r\ntransfer-encoding: chunked\r\n\r\n7\r\n{\"a\":1}\r\n0\r\n\r\n")
    }

    @Test func aFieldThatWouldBreakALineResetsTheStream() throws {
        let broken = [
            ("x-a", "1\r\ncontent-length: 5"), ("x-b", "nul\u{0}"), ("x\nc", "1"), ("transfer-encoding:chunked", "x"), ("X-Upper", "1"),
            (":unknown", "1"), (":path", "/second"),
        ]
        for (name, value) in broken {
            let channel = try channel(gettingWith: [(name, value)])
            #expect(try request(channel).isEmpty, "nothing reaches the request path")
            guard case .rstStream(.protocolError) = try frames(channel).first else {
                Issue.record("\(name): the stream must be reset")
                continue
            }
        }
        // Transfer-Encoding, Connection and a second Host never pass: framing is the stream's.
        let channel = try channel(gettingWith: [("transfer-encoding", "chunked"), ("connection", "close"), ("host", "evil.example")])
        #expect(try request(channel) == "GET /catalog/products/7 HTTP/1.1\r\nhost: shop.example\r\n\r\n")
    }

    @Test func anAnswerBecomesFramesAndEndsWhenTheRequestPathSaysSo() throws {
        let channel = try channel()
        try channel.writeInbound(HTTP2Frame.FramePayload.headers(.init(headers: Self.get, endStream: true)))
        _ = try request(channel)
        let body = ByteBuffer(string: "0123456789")
        try channel.writeOutbound(ByteBuffer(string: "HTTP/1.1 200 OK\r\nContent-Length: 10\r\nConnection: keep-alive\r\nETag: \"v1\"\r\n\r\n"))
        try channel.writeOutbound(body)
        var written = try frames(channel)
        guard written.count == 2, case .headers(let head) = written[0], case .data(let data) = written[1] else {
            Issue.record("a head and a body: \(written)")
            return
        }
        #expect(head.headers[":status"] == ["200"] && head.headers["etag"] == ["\"v1\""] && head.headers["connection"].isEmpty && !head.endStream)
        guard case .byteBuffer(let sent) = data.data else { return }
        #expect(sent == body && !data.endStream)
        // The stored body goes as it is: the same storage, not a copy.
        #expect(sent.withUnsafeReadableBytes { $0.baseAddress } == body.withUnsafeReadableBytes { $0.baseAddress })
        // The stream ends when the request path is done with the answer (its fetch stored).
        channel.pipeline.triggerUserOutboundEvent(HTTP2StreamAdapter.AnswerComplete(), promise: nil)
        written = try frames(channel)
        guard case .data(let end) = written.first else {
            Issue.record("END_STREAM: \(written)")
            return
        }
        #expect(end.endStream)
    }

    @Test func aChunkedAnswerIsSentWithoutItsChunking() throws {
        let channel = try channel()
        try channel.writeInbound(HTTP2Frame.FramePayload.headers(.init(headers: Self.get, endStream: true)))
        try channel.writeOutbound(ByteBuffer(string: "HTTP/1.1 200 OK\r\nTransfer-Encoding: chunked\r\n\r\n5\r\nhel"))
        try channel.writeOutbound(ByteBuffer(string: "lo\r\n6\r\n world\r\n0\r\n\r\n"))
        let written = try frames(channel)
        var body = ""
        for frame in written {
            if case .headers(let head) = frame { #expect(head.headers["transfer-encoding"].isEmpty) }
            if case .data(let data) = frame, case .byteBuffer(let bytes) = data.data { body += String(buffer: bytes) }
        }
        #expect(body == "hello world")
    }

    @Test func anAnswerCutShortIsAResetNotAnEnd() throws {
        let channel = try channel()
        try channel.writeInbound(HTTP2Frame.FramePayload.headers(.init(headers: Self.get, endStream: true)))
        try channel.writeOutbound(ByteBuffer(string: "HTTP/1.1 200 OK\r\nContent-Length: 100\r\n\r\nonly some"))
        _ = try frames(channel)
        try channel.close().wait()
        guard case .rstStream = try frames(channel).last else {
            Issue.record("a truncated body must not end the stream as if whole")
            return
        }
    }

    @Test func aHEADsAnswerHasNoBodyWhateverItsLength() throws {
        let channel = try channel()
        let head = HPACKHeaders([(":method", "HEAD"), (":path", "/p"), (":scheme", "https"), (":authority", "shop.example")])
        try channel.writeInbound(HTTP2Frame.FramePayload.headers(.init(headers: head, endStream: true)))
        try channel.writeOutbound(ByteBuffer(string: "HTTP/1.1 200 OK\r\nContent-Length: 1000\r\n\r\n"))
        channel.pipeline.triggerUserOutboundEvent(HTTP2StreamAdapter.AnswerComplete(), promise: nil)
        let written = try frames(channel)
        #expect(written.count == 2)
        if case .headers(let fields) = written.first { #expect(fields.headers["content-length"] == ["1000"]) }
        if case .data(let end) = written.last { #expect(end.endStream && end.data.readableBytes == 0) }
    }
}
