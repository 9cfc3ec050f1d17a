import NIOCore
import NIOHTTP1
import NIOPosix
import NIOSSL
import Synchronization

/// A test origin that answers every request with what it received, and with the response
/// headers the request asks for: `GET /echo/x?h=Name:Value&h=...` (values URL-encoded),
/// `status=N` for another status, `delay=MS` to answer late, `pad=N` for N more bytes of body, `hints=1` for a 103 Early Hints first, `full=Name:Value` for a field only a full answer (not a 304) carries, `stream=MIB` for a chunked answer of that many MiB of `s`, written only while its socket takes it. A request whose `If-None-Match`
/// matches the `ETag` it asks for gets a 304; `X-Echo-Tag-Count: N` adds a `Surrogate-Key` of N tags. While `failing` is set, everything gets a 503.
/// The body is `METHOD TARGET\nname: value\n...` followed by the request body.
final class EchoOrigin: Sendable {
    let channel: any Channel
    private let counter: Counter

    var port: Int { channel.localAddress!.port! }
    /// Requests answered so far.
    var requests: Int { counter.value.load(ordering: .relaxed) }
    /// Connections it accepted so far.
    var connections: Int { counter.connections.load(ordering: .relaxed) }
    /// Requests it is answering now.
    var inFlight: Int { counter.inFlight.load(ordering: .relaxed) }
    /// The most requests it was answering at the same time.
    var maxConcurrent: Int { counter.maxInFlight.load(ordering: .relaxed) }
    /// Body bytes of `stream=` answers written so far, and how many of them ended.
    var streamed: Int { counter.streamed.load(ordering: .relaxed) }
    var streamsEnded: Int { counter.streamsEnded.load(ordering: .relaxed) }

    private init(channel: any Channel, counter: Counter) {
        self.channel = channel
        self.counter = counter
    }

    /// - Parameter tls: a server context: the origin speaks HTTPS.
    static func start(tls: NIOSSLContext? = nil) async throws -> EchoOrigin {
        let counter = Counter()
        let channel = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .childChannelInitializer { channel in
                counter.connections.add(1, ordering: .relaxed)
                return channel.eventLoop.makeCompletedFuture {
                    if let tls { try channel.pipeline.syncOperations.addHandler(NIOSSLServerHandler(context: tls)) }
                    try channel.pipeline.syncOperations.configureHTTPServerPipeline()
                    try channel.pipeline.syncOperations.addHandler(Handler(counter: counter))
                }
            }
            .bind(host: "127.0.0.1", port: 0).get()
        return EchoOrigin(channel: channel, counter: counter)
    }

    func stop() async {
        try? await channel.close()
    }

    /// Answer 503 to everything while true.
    func setFailing(_ failing: Bool) { counter.failing.store(failing, ordering: .relaxed) }

    final class Counter: Sendable {
        let value = Atomic<Int>(0)
        let connections = Atomic<Int>(0)
        let failing = Atomic<Bool>(false)
        let inFlight = Atomic<Int>(0)
        let maxInFlight = Atomic<Int>(0)
        let streamed = Atomic<Int>(0)
        let streamsEnded = Atomic<Int>(0)
    }

    final class Handler: ChannelInboundHandler {
        typealias InboundIn = HTTPServerRequestPart
        typealias OutboundOut = HTTPServerResponsePart

        let counter: Counter
        var head: HTTPRequestHead?
        var body = ""
        /// What is left of a `stream=` answer.
        var streamLeft = 0
        static let streamChunk = ByteBuffer(repeating: UInt8(ascii: "s"), count: 65536)

        init(counter: Counter) { self.counter = counter }

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            switch unwrapInboundIn(data) {
            case .head(let head):
                self.head = head
                body = ""
            case .body(let buffer):
                body += String(buffer: buffer)
            case .end:
                guard let head else { return }
                if let mebibytes = Self.parameter("stream", head.uri).flatMap({ Int($0) }), mebibytes > 0, mebibytes <= 1024 {
                    counter.value.add(1, ordering: .relaxed)
                    var headers = HTTPHeaders()
                    headers.add(name: "Transfer-Encoding", value: "chunked")
                    context.write(wrapOutboundOut(.head(HTTPResponseHead(version: .http1_1, status: .ok, headers: headers))), promise: nil)
                    streamLeft = mebibytes << 20
                    pump(context: context)
                    return
                }
                counter.value.add(1, ordering: .relaxed)
                let now = counter.inFlight.add(1, ordering: .relaxed).newValue
                counter.maxInFlight.max(now, ordering: .relaxed)
                var text = "\(head.method.rawValue) \(head.uri)\n"
                for (name, value) in head.headers { text += "\(name.lowercased()): \(value)\n" }
                text += body
                if let pad = Self.parameter("pad", head.uri).flatMap({ Int($0) }), pad > 0, pad <= 1 << 20 {
                    text += String(repeating: "p", count: pad)
                }
                var headers = HTTPHeaders()
                for (name, value) in Self.requestedHeaders(head.uri) { headers.add(name: name, value: value) }
                if let count = head.headers.first(name: "x-echo-tag-count").flatMap({ Int($0) }) {
                    headers.add(name: "Surrogate-Key", value: (1...count).map { "product:\($0)" }.joined(separator: " "))
                }
                var status = HTTPResponseStatus(statusCode: Self.parameter("status", head.uri).flatMap { Int($0) } ?? 200)
                if counter.failing.load(ordering: .relaxed) {
                    status = .serviceUnavailable
                    headers = HTTPHeaders()
                } else if let etag = headers.first(name: "etag"), head.headers.first(name: "if-none-match") == etag {
                    status = .notModified
                    text = ""
                } else {
                    // `full=Name:Value`: fields sent with a full answer only, never with a 304.
                    for (name, value) in Self.requestedHeaders(head.uri, parameter: "full") { headers.add(name: name, value: value) }
                }
                headers.add(name: "Content-Length", value: String(text.utf8.count))
                let responseHead = HTTPResponseHead(version: .http1_1, status: status, headers: headers)
                let counter = self.counter
                let hints = Self.parameter("hints", head.uri) != nil
                let answer = { [text] in
                    counter.inFlight.subtract(1, ordering: .relaxed)
                    if hints {
                        // `hints=1`: a 103 Early Hints before the answer, as storefronts send to preload.
                        var early = HTTPHeaders()
                        early.add(name: "Link", value: "</app.css>; rel=preload; as=style")
                        early.add(name: "Connection", value: "x-hop")
                        early.add(name: "X-Hop", value: "drop-me")
                        let status = HTTPResponseStatus(statusCode: 103, reasonPhrase: "Early Hints")
                        context.writeAndFlush(self.wrapOutboundOut(.head(HTTPResponseHead(version: .http1_1, status: status, headers: early))), promise: nil)
                    }
                    context.write(self.wrapOutboundOut(.head(responseHead)), promise: nil)
                    if !text.isEmpty { context.write(self.wrapOutboundOut(.body(.byteBuffer(ByteBuffer(string: text)))), promise: nil) }
                    context.writeAndFlush(self.wrapOutboundOut(.end(nil)), promise: nil)
                }
                if let delay = Self.parameter("delay", head.uri).flatMap({ Int64($0) }) {
                    context.eventLoop.assumeIsolated().scheduleTask(in: .milliseconds(delay)) { answer() }
                } else {
                    answer()
                }
            }
        }

        /// Writes what is left of a `stream=` answer while the socket takes it.
        func pump(context: ChannelHandlerContext) {
            while streamLeft > 0, context.channel.isWritable {
                let size = min(streamLeft, Self.streamChunk.readableBytes)
                streamLeft -= size
                counter.streamed.add(size, ordering: .relaxed)
                context.writeAndFlush(wrapOutboundOut(.body(.byteBuffer(Self.streamChunk.getSlice(at: 0, length: size)!))), promise: nil)
            }
            if streamLeft == 0 {
                context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: nil)
                counter.streamsEnded.add(1, ordering: .relaxed)
            }
        }

        func channelWritabilityChanged(context: ChannelHandlerContext) {
            if streamLeft > 0, context.channel.isWritable { pump(context: context) }
            context.fireChannelWritabilityChanged()
        }

        static func parameter(_ name: String, _ uri: String) -> String? {
            guard let query = uri.split(separator: "?", maxSplits: 1).dropFirst().first else { return nil }
            for pair in query.split(separator: "&") where pair.hasPrefix("\(name)=") {
                return String(pair.dropFirst(name.count + 1))
            }
            return nil
        }

        static func requestedHeaders(_ uri: String, parameter: String = "h") -> [(String, String)] {
            guard let query = uri.split(separator: "?", maxSplits: 1).dropFirst().first else { return [] }
            return query.split(separator: "&").compactMap { pair in
                guard pair.hasPrefix("\(parameter)=") else { return nil }
                let value = String(pair.dropFirst(parameter.count + 1)).removingPercentEncodingForTests
                guard let colon = value.firstIndex(of: ":") else { return nil }
                return (String(value[..<colon]), String(value[value.index(after: colon)...]))
            }
        }
    }
}

extension String {
    /// `%XX` decoding, enough for the echo origin's query strings.
    var removingPercentEncodingForTests: String {
        var bytes: [UInt8] = []
        var iterator = utf8.makeIterator()
        while let byte = iterator.next() {
            if byte == UInt8(ascii: "%"), let high = iterator.next(), let low = iterator.next(),
                let value = UInt8(String(decoding: [high, low], as: UTF8.self), radix: 16)
            {
                bytes.append(value)
            } else {
                bytes.append(byte)
            }
        }
        return String(decoding: bytes, as: UTF8.self)
    }
}
