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
///
/// Timeouts cost no timer per command: each command keeps its deadline, and one timer per
/// connection, set for the earliest, fails the commands whose time is up.
final class RedisConnectionHandler: ChannelDuplexHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer
    typealias OutboundIn = RedisRequest
    typealias OutboundOut = ByteBuffer

    private struct Pending {
        let promise: EventLoopPromise<RESPValue>
        /// Uptime nanoseconds; `.max` for none.
        let deadline: UInt64
    }

    private let decoder = RESPDecoder()
    private var queue = RedisCommandQueue<Pending>()
    private var timer: Scheduled<Void>?
    private var timerDeadline = UInt64.max
    /// Commands encoded since the last flush: written as one buffer (pipelines cost one write).
    private var output: ByteBuffer?
    private var outputPromise: EventLoopPromise<Void>?

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        let request = unwrapOutboundIn(data)
        var deadline = UInt64.max
        if request.timeoutNanoseconds > 0 {
            deadline = context.eventLoop.now.uptimeNanoseconds &+ UInt64(request.timeoutNanoseconds)
            if deadline < timerDeadline { armTimer(at: deadline, context: context) }
        }
        guard case .send = queue.enqueue(Pending(promise: request.promise, deadline: deadline)).0 else {
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

    private func armTimer(at deadline: UInt64, context: ChannelHandlerContext) {
        timer?.cancel()
        timerDeadline = deadline
        timer = context.eventLoop.assumeIsolated().scheduleTask(deadline: NIODeadline.uptimeNanoseconds(deadline)) { [self] in
            timer = nil
            timerDeadline = .max
            let now = context.eventLoop.now.uptimeNanoseconds
            // Abandoned commands keep their place: their replies, when they come, are dropped.
            for pending in queue.abandonAll(where: { $0.deadline <= now }) { pending.promise.fail(RedisError.timeout) }
            if let next = queue.waiting.lazy.map(\.deadline).min(), next != .max { armTimer(at: next, context: context) }
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
            let input = unwrapInboundIn(data)
            // The bulk strings of this read share one buffer (slices of it): one allocation per
            // read, not one per reply.
            var arena = context.channel.allocator.buffer(capacity: input.readableBytes)
            try decoder.decode(input, arena: &arena) { reply in
                let (pending, unexpected) = queue.receive()
                if unexpected { throw RedisError.protocolError("a reply nobody asked for") }
                guard let pending else { return }
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
        timer?.cancel()
        timer = nil
        timerDeadline = .max
        for pending in queue.close() { pending.promise.fail(error) }
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
            let input = unwrapInboundIn(data)
            var arena = context.channel.allocator.buffer(capacity: input.readableBytes)
            try decoder.decode(input, arena: &arena) { reply in
                guard let parts = reply.array, parts.count == 3, parts[0].string == "message",
                    let channel = parts[1].string, let payload = parts[2].buffer
                else { return }
                onMessage(channel, payload)
            }
        } catch {
            context.close(promise: nil)
        }
    }
}
