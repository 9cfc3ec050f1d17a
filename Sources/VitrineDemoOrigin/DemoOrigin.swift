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
    /// Open client connections, closed by `stop()` (a stopped origin answers nothing more).
    private let connections = OpenConnections()

    /// An origin over the in-memory catalog of `productCount` generated products.
    public convenience init(host: String = "127.0.0.1", port: Int, productCount: Int = 10_000, group: any EventLoopGroup, logger: Logger) {
        self.init(host: host, port: port, catalog: DemoCatalog(productCount: productCount), group: group, logger: logger)
    }

    /// An origin over `catalog` (in memory, or Postgres tables).
    public init(host: String = "127.0.0.1", port: Int, catalog: any CatalogStore, group: any EventLoopGroup, logger: Logger) {
        self.api = DemoOriginAPI(catalog: catalog)
        self.host = host
        self.port = port
        self.group = group
        self.logger = logger
    }

    /// Binds the listener; returns the bound address (useful with port 0).
    @discardableResult
    public func start() async throws -> SocketAddress {
        let api = self.api
        let connections = self.connections
        let bound = try await ServerBootstrap(group: group)
            .serverChannelOption(.backlog, value: 1024)
            .serverChannelOption(.socketOption(.so_reuseaddr), value: 1)
            .childChannelOption(.socketOption(.tcp_nodelay), value: 1)
            .childChannelInitializer { channel in
                let id = ObjectIdentifier(channel)
                connections.channels.withLock { $0[id] = channel }
                channel.closeFuture.whenComplete { _ in connections.channels.withLock { _ = $0.removeValue(forKey: id) } }
                return channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.configureHTTPServerPipeline(withErrorHandling: true)
                    try channel.pipeline.syncOperations.addHandler(DemoOriginHandler(api: api))
                }
            }
            .bind(host: host, port: port)
            .get()
        channel.withLock { $0 = bound }
        logger.info("demo origin listening", metadata: ["address": "\(bound.localAddress!)", "catalog": "\(type(of: api.catalog))"])
        return bound.localAddress!
    }

    public func stop() async {
        let open = channel.withLock { channel in
            defer { channel = nil }
            return channel
        }
        try? await open?.close()
        for connection in connections.channels.withLock({ Array($0.values) }) { try? await connection.close() }
    }

    public func run() async throws {
        try await start()
        try? await gracefulShutdown()
        await stop()
    }
}

/// Reads a request (body up to 1 MiB) and writes the API's answer. The answer is computed in a
/// task (the catalog may be in Postgres); NIO's pipelining handler holds the next request of the
/// connection until this one's response has ended, so answers keep their order.
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
            let api = self.api
            let (method, uri, headers, body) = (head.method.rawValue, head.uri, head.headers.map { ($0.name, $0.value) }, body)
            let answer = context.eventLoop.makePromise(of: DemoResponse.self)
            answer.completeWithTask { await api.handle(method: method, uri: uri, headers: headers, body: body) }
            answer.futureResult.assumeIsolated().whenSuccess { response in
                Self.write(response, for: head, context: context)
            }
        }
    }

    private static func write(_ response: DemoResponse, for head: HTTPRequestHead, context: ChannelHandlerContext) {
        var headers = HTTPHeaders(response.headers)
        headers.add(name: "Content-Length", value: String(response.body.count))
        if !head.isKeepAlive { headers.add(name: "Connection", value: "close") }
        let responseHead = HTTPResponseHead(
            version: .http1_1, status: HTTPResponseStatus(statusCode: response.status), headers: headers)
        context.write(NIOAny(HTTPServerResponsePart.head(responseHead)), promise: nil)
        if head.method != .HEAD && !response.body.isEmpty {
            context.write(NIOAny(HTTPServerResponsePart.body(.byteBuffer(ByteBuffer(bytes: response.body)))), promise: nil)
        }
        let done = context.writeAndFlush(NIOAny(HTTPServerResponsePart.end(nil)))
        if !head.isKeepAlive { done.assumeIsolated().whenComplete { _ in context.close(promise: nil) } }
    }
}

/// The origin's open client connections.
final class OpenConnections: Sendable {
    let channels = Mutex<[ObjectIdentifier: any Channel]>([:])
}
