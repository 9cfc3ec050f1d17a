import NIOCore
import NIOPosix
import NIOSSL
import Synchronization

/// One pipelined connection to Redis. Commands may be sent from any thread; replies come back in
/// order. `AUTH` and `SELECT` from the URL are sent when it connects.
public final class RedisConnection: Sendable {
    public let channel: any Channel
    /// A flush is due at the end of this event-loop tick: every command sent until then (from
    /// every request the loop serves meanwhile) goes out in one write.
    private let flushScheduled = Atomic<Bool>(false)
    public var eventLoop: any EventLoop { channel.eventLoop }
    public var isActive: Bool { channel.isActive }
    public var closeFuture: EventLoopFuture<Void> { channel.closeFuture }

    private init(channel: any Channel) {
        self.channel = channel
    }

    /// Connects, authenticates and selects the database.
    ///
    /// A `rediss://` URL connects with TLS: through `tls` when given (a client shares one), else a
    /// context made for this connection from the URL.
    public static func connect(
        to url: RedisURL, on eventLoop: any EventLoop, connectTimeout: TimeAmount = .seconds(1),
        commandTimeout: TimeAmount = .seconds(1), tls: NIOSSLContext? = nil
    ) async throws -> RedisConnection {
        try await connectFuture(to: url, on: eventLoop, connectTimeout: connectTimeout, commandTimeout: commandTimeout, tls: tls).get()
    }

    /// `connect` as a future, completed on `eventLoop`.
    public static func connectFuture(
        to url: RedisURL, on eventLoop: any EventLoop, connectTimeout: TimeAmount = .seconds(1),
        commandTimeout: TimeAmount = .seconds(1), tls: NIOSSLContext? = nil
    ) -> EventLoopFuture<RedisConnection> {
        let tlsContext: NIOSSLContext?
        do {
            tlsContext = url.tls ? try tls ?? RedisTLS.context(for: url) : nil
        } catch {
            return eventLoop.makeFailedFuture(error)
        }
        return ClientBootstrap(group: eventLoop)
            .connectTimeout(connectTimeout)
            .channelOption(.socketOption(.tcp_nodelay), value: 1)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    if let tlsContext { try RedisTLS.addHandler(context: tlsContext, host: url.host, to: channel) }
                    try channel.pipeline.syncOperations.addHandler(RedisConnectionHandler())
                }
            }
            .connect(host: url.host, port: url.port)
            .flatMap { channel in
                let connection = RedisConnection(channel: channel)
                var setup = channel.eventLoop.makeSucceededVoidFuture()
                if let password = url.password {
                    let arguments: [RESPArgument] =
                        url.user.map { ["AUTH", .string($0), .string(password)] } ?? ["AUTH", .string(password)]
                    setup = connection.send(arguments, timeout: commandTimeout).map { _ in }
                }
                if url.database != 0 {
                    setup = setup.flatMap { connection.send(["SELECT", .string(String(url.database))], timeout: commandTimeout).map { _ in } }
                }
                return setup.map { connection }.flatMapError { error in
                    channel.close(promise: nil)
                    return channel.eventLoop.makeFailedFuture(error)
                }
            }
    }

    /// Sends one command; the future fails with `RedisError.server` for an error reply.
    public func send(_ arguments: [RESPArgument], timeout: TimeAmount? = nil) -> EventLoopFuture<RESPValue> {
        let promise = channel.eventLoop.makePromise(of: RESPValue.self)
        submit(RedisRequest(arguments: arguments, promise: promise, timeout: timeout), coalescing: true)
        return promise.futureResult
    }

    /// Sends many commands at once (one write, one flush, one promise); the future has every
    /// reply in order, error replies included as `.error` values. It fails as a whole if the
    /// connection closes or the timeout passes first.
    public func pipeline(_ commands: [[RESPArgument]], timeout: TimeAmount? = nil) -> EventLoopFuture<[RESPValue]> {
        let promise = channel.eventLoop.makePromise(of: [RESPValue].self)
        submit(RedisRequest(pipeline: commands, promise: promise, timeout: timeout), coalescing: false)
        return promise.futureResult
    }

    /// Writes `request` to the handler, which answers it. A write that never reaches the handler
    /// (the channel closed first, and its handlers are gone) fails the request, which would
    /// otherwise wait forever: its timeout is the handler's to enforce.
    ///
    /// Single commands sent from the loop are flushed at the end of its tick (`coalescing`), all
    /// together; a pipeline is a batch already, and goes out at once.
    private func submit(_ request: RedisRequest, coalescing: Bool) {
        if channel.eventLoop.inEventLoop && channel.isActive {
            // On the loop, an active channel still has its handler: no promise to allocate.
            guard coalescing else {
                channel.writeAndFlush(request, promise: nil)
                return
            }
            channel.write(request, promise: nil)
            if !flushScheduled.exchange(true, ordering: .relaxed) {
                let channel = self.channel
                channel.eventLoop.execute {
                    self.flushScheduled.store(false, ordering: .relaxed)
                    channel.flush()
                }
            }
            return
        }
        let written = channel.eventLoop.makePromise(of: Void.self)
        written.futureResult.whenFailure { _ in request.fail(RedisError.connectionClosed) }
        channel.writeAndFlush(request, promise: written)
    }

    public func close() async {
        try? await channel.close()
    }
}

/// A connection subscribed to channels: each published message is handed to `onMessage`, on the
/// connection's event loop. Sharded (`SSUBSCRIBE`, on a cluster), the connection must be to the
/// node serving the channel's slot, and it closes when the node stops serving it (the server's
/// `sunsubscribe`): the owner subscribes again where the slot is now.
public final class RedisSubscription: Sendable {
    public let channel: any Channel
    public var closeFuture: EventLoopFuture<Void> { channel.closeFuture }

    private init(channel: any Channel) {
        self.channel = channel
    }

    /// Subscribes, and returns once the server has confirmed the subscription: from then on no
    /// message published on `channels` is missed while the connection lives. A server that goes
    /// silent (a half-open socket never errors) is noticed by `heartbeat`: a `PING` each interval,
    /// and the connection closed when nothing has been read for three.
    public static func subscribe(
        to channels: [String], url: RedisURL, on eventLoop: any EventLoop, connectTimeout: TimeAmount = .seconds(1),
        tls: NIOSSLContext? = nil, sharded: Bool = false, heartbeat: TimeAmount = .seconds(1),
        onMessage: @escaping @Sendable (_ channel: String, _ payload: ByteBuffer) -> Void
    ) async throws -> RedisSubscription {
        // AUTH first on a plain connection, then switch the pipeline to the subscription handler.
        let connection = try await RedisConnection.connect(to: url, on: eventLoop, connectTimeout: connectTimeout, tls: tls)
        let channel = connection.channel
        let confirmed = channel.eventLoop.makePromise(of: Void.self)
        do {
            try await channel.eventLoop.submit {
                let handler = try channel.pipeline.syncOperations.handler(type: RedisConnectionHandler.self)
                // Removal is synchronous for this handler: nothing is in flight after AUTH/SELECT.
                channel.pipeline.syncOperations.removeHandler(handler, promise: nil)
                try channel.pipeline.syncOperations.addHandler(
                    RedisSubscriptionHandler(onMessage: onMessage, confirmed: confirmed, heartbeat: heartbeat))
                var buffer = channel.allocator.buffer(capacity: 64)
                RESPEncoder.encode([sharded ? "SSUBSCRIBE" : "SUBSCRIBE"] + channels.map { .string($0) }, into: &buffer)
                channel.writeAndFlush(buffer, promise: nil)
                let timeout = channel.eventLoop.scheduleTask(in: connectTimeout) {
                    confirmed.fail(RedisError.timeout)
                    channel.close(promise: nil)
                }
                confirmed.futureResult.whenComplete { _ in timeout.cancel() }
            }.get()
            try await confirmed.futureResult.get()
        } catch {
            confirmed.fail(error)
            try? await channel.close()
            throw error
        }
        return RedisSubscription(channel: channel)
    }

    public func close() async {
        try? await channel.close()
    }
}
