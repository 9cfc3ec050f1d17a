import NIOCore
import NIOPosix
import Synchronization

/// A client socket for tests of connection handling: writes whatever it is given without
/// waiting, keeps what arrives, and tells when the server closed the connection. With
/// `autoRead: false` it never reads: a client that pipelines and ignores the answers.
final class RawClient: Sendable {
    private let channel: any Channel
    private let collector: Collector
    let closed: EventLoopFuture<Void>

    private init(channel: any Channel, collector: Collector) {
        self.channel = channel
        self.collector = collector
        self.closed = channel.closeFuture
    }

    static func connect(port: Int, autoRead: Bool = true) async throws -> RawClient {
        let collector = Collector()
        var bootstrap = ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
        if !autoRead {
            // A small receive window: what the server manages to push into the socket stays small.
            bootstrap = bootstrap.channelOption(.socketOption(.so_rcvbuf), value: 4096)
        }
        let channel = try await bootstrap
            .channelOption(.autoRead, value: autoRead)
            .channelOption(.allowRemoteHalfClosure, value: false)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture { try channel.pipeline.syncOperations.addHandler(collector) }
            }
            .connect(host: "127.0.0.1", port: port).get()
        return RawClient(channel: channel, collector: collector)
    }

    /// What the server sent so far.
    var received: String { collector.received.withLock { $0 } }
    var isClosed: Bool { !channel.isActive }

    func send(_ text: String) {
        channel.writeAndFlush(ByteBuffer(string: text), promise: nil)
    }

    /// Starts reading (for a client connected with `autoRead: false`).
    func startReading() {
        channel.setOption(.autoRead, value: true).whenSuccess { [channel] in channel.read() }
    }

    func close() {
        channel.close(promise: nil)
    }

    private final class Collector: ChannelInboundHandler, Sendable {
        typealias InboundIn = ByteBuffer
        let received = Mutex("")

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            let text = String(buffer: unwrapInboundIn(data))
            received.withLock { $0 += text }
        }

        func errorCaught(context: ChannelHandlerContext, error: any Error) {
            context.close(promise: nil)
        }
    }
}
