import Logging
import NIOCore
import NIOHTTP1
import NIOPosix
import ServiceLifecycle
import Synchronization

/// The embedded demo origin: catalog, search and writes over HTTP/1.1 (`vitrine origin`, and
/// inside `vitrine demo`, the tests and the benchmarks).
public final class DemoOrigin: Service, Sendable {
    public let api: DemoOriginAPI
    private let host: String
    private let port: Int
    private let group: any EventLoopGroup
    private let logger: Logger
    private let channel = Mutex<(any Channel)?>(nil)

    public init(host: String = "127.0.0.1", port: Int, productCount: Int = 10_000, group: any EventLoopGroup, logger: Logger) {
        self.api = DemoOriginAPI(catalog: DemoCatalog(productCount: productCount))
        self.host = host
        self.port = port
        self.group = group
        self.logger = logger
    }

    /// Binds the listener; returns the bound address (useful with port 0).
    @discardableResult
    public func start() async throws -> SocketAddress {
        let api = self.api
        let bound = try await ServerBootstrap(group: group)
            .serverChannelOption(.backlog, value: 1024)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelOption(.socketOption(.tcp_nodelay), value: 1)
            .childChannelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.configureHTTPServerPipeline(withErrorHandling: true)
                    try channel.pipeline.syncOperations.addHandler(DemoOriginHandler(api: api))
                }
            }
            .bind(host: host, port: port)
            .get()
        channel.withLock { $0 = bound }
        logger.info("demo origin listening", metadata: ["address": "\(bound.localAddress!)", "products": "\(api.catalog.productCount)"])
        return bound.localAddress!
    }

    public func stop() async {
        let open = channel.withLock { channel in
            defer { channel = nil }
            return channel
        }
        try? await open?.close()
    }

    public func run() async throws {
        try await start()
        try? await gracefulShutdown()
        await stop()
    }
}

/// Reads a request (body up to 1 MiB) and writes the API's answer.
final class DemoOriginHandler: ChannelInboundHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart

    private let api: DemoOriginAPI
    private var head: HTTPRequestHead?
    private var body: [UInt8] = []

    init(api: DemoOriginAPI) {
        self.api = api
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let head):
            self.head = head
            body.removeAll(keepingCapacity: true)
        case .body(let buffer):
            if body.count < 1 << 20 { body.append(contentsOf: buffer.readableBytesView) }
        case .end:
            guard let head else { return }
            self.head = nil
            let response = api.handle(
                method: head.method.rawValue, uri: head.uri, headers: head.headers.map { ($0.name, $0.value) }, body: body)
            var headers = HTTPHeaders(response.headers)
            headers.add(name: "Content-Length", value: String(response.body.count))
            if !head.isKeepAlive { headers.add(name: "Connection", value: "close") }
            let responseHead = HTTPResponseHead(
                version: .http1_1, status: HTTPResponseStatus(statusCode: response.status), headers: headers)
            context.write(wrapOutboundOut(.head(responseHead)), promise: nil)
            if head.method != .HEAD && !response.body.isEmpty {
                context.write(wrapOutboundOut(.body(.byteBuffer(ByteBuffer(bytes: response.body)))), promise: nil)
            }
            let done = context.writeAndFlush(wrapOutboundOut(.end(nil)))
            if !head.isKeepAlive { done.assumeIsolated().whenComplete { _ in context.close(promise: nil) } }
        }
    }
}
