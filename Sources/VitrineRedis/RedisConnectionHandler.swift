import NIOCore

/// A command and where its reply goes; what is written into a Redis channel. Three words, so
/// that it fits a channel message's inline storage (no box per command).
struct RedisRequest: Sendable {
    let arguments: [RESPArgument]
    let promise: EventLoopPromise<RESPValue>
    /// Nanoseconds; 0 for none.
    let timeoutNanoseconds: Int64

    init(arguments: [RESPArgument], promise: EventLoopPromise<RESPValue>, timeout: TimeAmount?) {
        self.arguments = arguments
        self.promise = promise
        self.timeoutNanoseconds = timeout?.nanoseconds ?? 0
    }
}

/// The last handler of a Redis channel: encodes commands (hiredis), parses replies (hiredis),
/// and matches them in order (`RedisCommandQueue`). Many commands may be in flight.
final class RedisConnectionHandler: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundIn = RedisRequest
    typealias OutboundOut = ByteBuffer

    private struct Pending {
        let promise: EventLoopPromise<RESPValue>
        let timer: Scheduled<Void>?
    }

    private let decoder = RESPDecoder()
    private var queue = RedisCommandQueue<Pending>()
    /// Commands encoded since the last flush: written as one buffer (pipelines cost one write).
    private var output: ByteBuffer?
    private var outputPromise: EventLoopPromise<Void>?

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        let request = unwrapOutboundIn(data)
        let ticket = queue.nextTicket
        var timer: Scheduled<Void>?
        if request.timeoutNanoseconds > 0 {
            timer = context.eventLoop.assumeIsolated().scheduleTask(in: .nanoseconds(request.timeoutNanoseconds)) { [self] in
                queue.abandon(ticket)?.promise.fail(RedisError.timeout)
            }
        }
        guard case .send = queue.enqueue(Pending(promise: request.promise, timer: timer)).0 else {
            timer?.cancel()
            request.promise.fail(RedisError.connectionClosed)
            promise?.fail(RedisError.connectionClosed)
            return
        }
        if output == nil { output = context.channel.allocator.buffer(capacity: 4096) }
        RESPEncoder.encode(request.arguments, into: &output!)
        if let promise {
            if let outputPromise { outputPromise.futureResult.cascade(to: promise) } else { outputPromise = promise }
        }
    }

    func flush(context: ChannelHandlerContext) {
        if let buffer = output {
            output = nil
            let promise = outputPromise
            outputPromise = nil
            context.write(wrapOutboundOut(buffer), promise: promise)
        }
        context.flush()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        do {
            try decoder.feed(unwrapInboundIn(data))
            while let reply = try decoder.next() {
                let (pending, unexpected) = queue.receive()
                if unexpected { throw RedisError.protocolError("a reply nobody asked for") }
                guard let pending else { continue }
                pending.timer?.cancel()
                if case .error(let message) = reply {
                    pending.promise.fail(RedisError.server(message))
                } else {
                    pending.promise.succeed(reply)
                }
            }
        } catch {
            // The reply stream cannot be trusted any more.
            failAll(error)
            context.close(promise: nil)
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        failAll(RedisError.connectionClosed)
        context.fireChannelInactive()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        failAll(error)
        context.close(promise: nil)
    }

    private func failAll(_ error: any Error) {
        for pending in queue.close() {
            pending.timer?.cancel()
            pending.promise.fail(error)
        }
    }
}

/// The last handler of a subscribed (pub/sub) channel: hands each published message to
/// `onMessage`; confirmations and pongs are dropped.
final class RedisSubscriptionHandler: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer

    private let decoder = RESPDecoder()
    private let onMessage: @Sendable (_ channel: String, _ payload: ByteBuffer) -> Void

    init(onMessage: @escaping @Sendable (_ channel: String, _ payload: ByteBuffer) -> Void) {
        self.onMessage = onMessage
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        do {
            try decoder.feed(unwrapInboundIn(data))
            while let reply = try decoder.next() {
                guard let parts = reply.array, parts.count == 3, parts[0].string == "message",
                    let channel = parts[1].string, let payload = parts[2].buffer
                else { continue }
                onMessage(channel, payload)
            }
        } catch {
            context.close(promise: nil)
        }
    }
}
