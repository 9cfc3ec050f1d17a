import NIOCore
import NIOHPACK
import NIOHTTP2
import NIOPosix
import NIOSSL
import NIOTLS
import Synchronization

/// An HTTP/2 client for tests: one TLS connection (ALPN `h2`, trusting the test CA), on which
/// each request is a stream of its own, any number at once.
final class HTTP2TestClient: Sendable {
    struct Response: Sendable {
        var status: Int
        var headers: HPACKHeaders
        var body: [UInt8]
        /// The stream was reset (RST_STREAM) instead of answered.
        var reset: HTTP2ErrorCode?

        func header(_ name: String) -> String? { headers.first(name: name.lowercased()) }
        var text: String { String(decoding: body, as: UTF8.self) }
    }

    let channel: any Channel
    private let multiplexer: NIOHTTP2Handler.StreamMultiplexer
    /// The protocol ALPN settled on.
    let negotiated: String?

    private init(channel: any Channel, multiplexer: NIOHTTP2Handler.StreamMultiplexer, negotiated: String?) {
        self.channel = channel
        self.multiplexer = multiplexer
        self.negotiated = negotiated
    }

    /// Connects to 127.0.0.1:`port` asking for `serverName`; `validateHeaders: false` lets the
    /// client send fields swift-nio-http2 would refuse (to test the server's own checks).
    static func connect(port: Int, serverName: String = "shop.example", validateHeaders: Bool = true) async throws -> HTTP2TestClient {
        let tls = try TestCertificates.client(applicationProtocols: ["h2", "http/1.1"])
        let loop = MultiThreadedEventLoopGroup.singleton.next()
        let negotiated = loop.makePromise(of: String?.self)
        let configured = loop.makePromise(of: NIOHTTP2Handler.StreamMultiplexer.self)
        var configuration = NIOHTTP2Handler.ConnectionConfiguration()
        configuration.headerBlockValidation = validateHeaders ? .enabled : .disabled
        let connection = configuration
        // HTTP/2 from the start (its preface waits in the TLS handler for the handshake): the
        // server's SETTINGS come right after the handshake, and must find it there.
        let channel = try await ClientBootstrap(group: loop)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(NIOSSLClientHandler(context: tls, serverHostname: serverName))
                    try channel.pipeline.syncOperations.addHandler(ALPNWatcher(negotiated: negotiated))
                    configured.succeed(
                        try channel.pipeline.syncOperations.configureHTTP2Pipeline(
                            mode: .client, connectionConfiguration: connection, streamConfiguration: .init()
                        ) { $0.eventLoop.makeSucceededVoidFuture() })
                }
            }
            .connect(host: "127.0.0.1", port: port).get()
        let alpn = try await negotiated.futureResult.get()
        let multiplexer = try await configured.futureResult.get()
        return HTTP2TestClient(channel: channel, multiplexer: multiplexer, negotiated: alpn)
    }

    /// Sends one request on a new stream and waits for its whole answer.
    func request(
        _ method: String = "GET", _ path: String, headers: [(String, String)] = [], body: [UInt8]? = nil, authority: String = "shop.example"
    ) async throws -> Response {
        let done = channel.eventLoop.makePromise(of: Response.self)
        var fields = HPACKHeaders([(":method", method), (":path", path), (":scheme", "https"), (":authority", authority)])
        for (name, value) in headers { fields.add(name: name, value: value) }
        let stream: any Channel
        do {
            stream = try await multiplexer.createStreamChannel { stream in
                stream.eventLoop.makeCompletedFuture { try stream.pipeline.syncOperations.addHandler(Collector(done: done)) }
            }.get()
        } catch {
            done.fail(error)
            throw error
        }
        stream.write(HTTP2Frame.FramePayload.headers(.init(headers: fields, endStream: body == nil)), promise: nil)
        if let body { stream.write(HTTP2Frame.FramePayload.data(.init(data: .byteBuffer(ByteBuffer(bytes: body)), endStream: true)), promise: nil) }
        stream.flush()
        return try await done.futureResult.get()
    }

    func close() async {
        try? await channel.close()
    }

    /// Tells the protocol ALPN settled on (or the handshake's failure), passing everything on.
    private final class ALPNWatcher: ChannelInboundHandler {
        typealias InboundIn = ByteBuffer
        let negotiated: EventLoopPromise<String?>
        var told = false
        init(negotiated: EventLoopPromise<String?>) { self.negotiated = negotiated }

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            context.fireChannelRead(data)
        }

        func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
            if case .handshakeCompleted(let alpn) = event as? TLSUserEvent, !told {
                told = true
                negotiated.succeed(alpn)
            }
            context.fireUserInboundEventTriggered(event)
        }

        func errorCaught(context: ChannelHandlerContext, error: any Error) {
            if !told { negotiated.fail(error) }
            told = true
            context.fireErrorCaught(error)
        }

        func channelInactive(context: ChannelHandlerContext) {
            if !told { negotiated.fail(ChannelError.ioOnClosedChannel) }
            told = true
            context.fireChannelInactive()
        }
    }

    /// Gathers one stream's answer (the final head, the body) until END_STREAM or a reset.
    private final class Collector: ChannelInboundHandler {
        typealias InboundIn = HTTP2Frame.FramePayload
        private let promise: EventLoopPromise<Response>
        private var finished = false
        var response = Response(status: 0, headers: [:], body: [], reset: nil)

        init(done: EventLoopPromise<Response>) { self.promise = done }

        private var done: (succeed: (Response) -> Void, fail: (any Error) -> Void) {
            (
                { [self] response in
                    guard !finished else { return }
                    finished = true
                    promise.succeed(response)
                },
                { [self] error in
                    guard !finished else { return }
                    finished = true
                    promise.fail(error)
                }
            )
        }

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            switch unwrapInboundIn(data) {
            case .headers(let frame):
                if let status = frame.headers.first(name: ":status").flatMap(Int.init), status >= 200 {
                    response.status = status
                    response.headers = frame.headers
                }
                if frame.endStream { done.succeed(response) }
            case .data(let frame):
                if case .byteBuffer(let bytes) = frame.data { response.body += bytes.readableBytesView }
                if frame.endStream { done.succeed(response) }
            case .rstStream(let code):
                response.reset = code
                done.succeed(response)
            default:
                break
            }
        }

        func channelInactive(context: ChannelHandlerContext) {
            response.reset = response.reset ?? .cancel
            done.succeed(response)
        }

        func errorCaught(context: ChannelHandlerContext, error: any Error) {
            done.fail(error)
        }
    }
}
