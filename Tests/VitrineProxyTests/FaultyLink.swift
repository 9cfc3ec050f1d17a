import NIOCore
import NIOPosix
import Synchronization

/// A TCP forwarder between a node and a server (Redis, Postgres) that can make the link slow:
/// every chunk, either way, is delivered `delay` after it arrived, in order. Tests put it where
/// a real network would be slow, to turn a race that is usually won into one that is always
/// lost. It can also cut the link (every connection closed, new ones refused: a partition) and
/// restore it.
final class FaultyLink: Sendable {
    private let listener: any Channel
    private let settings: Settings

    /// The port to connect to instead of the server's.
    var port: Int { listener.localAddress!.port! }

    final class Settings: Sendable {
        let delayNanoseconds = Atomic<Int64>(0)
        let isCut = Atomic<Bool>(false)
        /// Nothing gets through either way while set, and it is delivered once unset, in order:
        /// a server (or network) that takes commands and answers nothing for a while, as TCP
        /// would behave (it loses nothing it accepted).
        let isPaused = Atomic<Bool>(false)
        let open = Mutex<[ObjectIdentifier: any Channel]>([:])
        let targetHost: String
        let targetPort: Int

        init(host: String, port: Int) {
            self.targetHost = host
            self.targetPort = port
        }
    }

    private init(listener: any Channel, settings: Settings) {
        self.listener = listener
        self.settings = settings
    }

    static func start(to host: String = "127.0.0.1", port: Int, delay: Duration = .zero) async throws -> FaultyLink {
        let settings = Settings(host: host, port: port)
        settings.delayNanoseconds.store(Int64(delay.components.seconds * 1_000_000_000 + delay.components.attoseconds / 1_000_000_000), ordering: .relaxed)
        let listener = try await ServerBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .childChannelOption(.autoRead, value: false)
            .childChannelInitializer { inbound in
                if settings.isCut.load(ordering: .relaxed) {
                    inbound.close(promise: nil)
                    return inbound.eventLoop.makeSucceededVoidFuture()
                }
                settings.open.withLock { $0[ObjectIdentifier(inbound)] = inbound }
                inbound.closeFuture.whenComplete { _ in _ = settings.open.withLock { $0.removeValue(forKey: ObjectIdentifier(inbound)) } }
                return inbound.eventLoop.makeCompletedFuture {
                    let relay = Relay(settings: settings)
                    try inbound.pipeline.syncOperations.addHandler(relay)
                    // The server side on the same event loop: both relays are then only ever
                    // touched from it.
                    ClientBootstrap(group: inbound.eventLoop)
                        .channelInitializer { outbound in
                            outbound.eventLoop.makeCompletedFuture {
                                try outbound.pipeline.syncOperations.addHandler(Relay(settings: settings, partner: inbound))
                            }
                        }
                        .connect(host: settings.targetHost, port: settings.targetPort)
                        .assumeIsolated()
                        .whenComplete { result in
                            switch result {
                            case .success(let outbound):
                                relay.partner = outbound
                                inbound.read()
                            case .failure:
                                inbound.close(promise: nil)
                            }
                        }
                }
            }
            .bind(host: "127.0.0.1", port: 0).get()
        return FaultyLink(listener: listener, settings: settings)
    }

    func setDelay(_ delay: Duration) {
        settings.delayNanoseconds.store(
            Int64(delay.components.seconds * 1_000_000_000 + delay.components.attoseconds / 1_000_000_000), ordering: .relaxed)
    }

    /// A partition: every forwarded connection is closed, and new ones are refused until `restore`.
    func cut() {
        settings.isCut.store(true, ordering: .relaxed)
        for channel in settings.open.withLock({ Array($0.values) }) { channel.close(promise: nil) }
    }

    func restore() {
        settings.isCut.store(false, ordering: .relaxed)
    }

    /// While true, connections stay open and nothing gets through (it is delivered afterwards):
    /// commands go unanswered meanwhile.
    func setPaused(_ on: Bool) {
        settings.isPaused.store(on, ordering: .relaxed)
    }

    func stop() async {
        try? await listener.close()
    }

    /// One side of a forwarded connection: what it reads is written to the other side, late.
    final class Relay: ChannelDuplexHandler {
        typealias InboundIn = ByteBuffer
        typealias OutboundIn = ByteBuffer

        let settings: Settings
        var partner: (any Channel)?

        init(settings: Settings, partner: (any Channel)? = nil) {
            self.settings = settings
            self.partner = partner
        }

        func channelActive(context: ChannelHandlerContext) {
            if partner != nil { context.read() }
            context.fireChannelActive()
        }

        /// What was read and not yet passed on (while the link is paused).
        var held: [ByteBuffer] = []
        var waiting = false

        func channelRead(context: ChannelHandlerContext, data: NIOAny) {
            held.append(unwrapInboundIn(data))
            passOn(context: context)
        }

        private func passOn(context: ChannelHandlerContext) {
            guard let partner, !waiting else { return }
            if settings.isPaused.load(ordering: .relaxed) {
                waiting = true
                context.eventLoop.assumeIsolated().scheduleTask(in: .milliseconds(10)) { [self] in
                    waiting = false
                    passOn(context: context)
                }
                return
            }
            let buffers = held
            held.removeAll()
            let delay = settings.delayNanoseconds.load(ordering: .relaxed)
            for buffer in buffers {
                if delay == 0 {
                    partner.writeAndFlush(buffer, promise: nil)
                } else {
                    context.eventLoop.assumeIsolated().scheduleTask(in: .nanoseconds(delay)) {
                        partner.writeAndFlush(buffer, promise: nil)
                    }
                }
            }
        }

        func channelReadComplete(context: ChannelHandlerContext) {
            context.read()
        }

        func channelInactive(context: ChannelHandlerContext) {
            let delay = settings.delayNanoseconds.load(ordering: .relaxed)
            let partner = self.partner
            // After what is still on its way.
            context.eventLoop.assumeIsolated().scheduleTask(in: .nanoseconds(delay)) { partner?.close(promise: nil) }
            context.fireChannelInactive()
        }

        func errorCaught(context: ChannelHandlerContext, error: any Error) {
            context.close(promise: nil)
        }
    }
}
