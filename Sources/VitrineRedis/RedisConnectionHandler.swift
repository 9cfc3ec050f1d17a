import NIOCore

/// What is written into a Redis channel: one command and where its reply goes, or a pipeline of
/// commands whose replies come back together (one promise, one trip through the channel, for
/// the lot). Three words, so that it fits a channel message's inline storage (no box per write).
struct RedisRequest: Sendable {
    enum Work: Sendable {
        case command([RESPArgument], EventLoopPromise<RESPValue>)
        case pipeline([[RESPArgument]], EventLoopPromise<[RESPValue]>)
    }

    let work: Work
    /// Nanoseconds; 0 for none.
    let timeoutNanoseconds: Int64

    init(arguments: [RESPArgument], promise: EventLoopPromise<RESPValue>, timeout: TimeAmount?) {
        self.work = .command(arguments, promise)
        self.timeoutNanoseconds = timeout?.nanoseconds ?? 0
    }

    init(pipeline commands: [[RESPArgument]], promise: EventLoopPromise<[RESPValue]>, timeout: TimeAmount?) {
        self.work = .pipeline(commands, promise)
        self.timeoutNanoseconds = timeout?.nanoseconds ?? 0
    }

    func fail(_ error: any Error) {
        switch work {
        case .command(_, let promise): promise.fail(error)
        case .pipeline(_, let promise): promise.fail(error)
        }
    }
}

/// The replies of one pipeline, gathered in order; its promise is completed with all of them
/// (error replies included, as `.error`), or failed once if the pipeline times out or the
/// connection closes.
final class PipelineReplies {
    private let promise: EventLoopPromise<[RESPValue]>
    private let count: Int
    @exclusivity(unchecked) private var replies: [RESPValue] = []
    @exclusivity(unchecked) private var finished = false

    init(count: Int, promise: EventLoopPromise<[RESPValue]>) {
        self.count = count
        self.promise = promise
        replies.reserveCapacity(count)
    }

    func receive(_ reply: RESPValue) {
        guard !finished else { return }
        replies.append(reply)
        if replies.count == count {
            finished = true
            promise.succeed(replies)
        }
    }

    func fail(_ error: any Error) {
        guard !finished else { return }
        finished = true
        promise.fail(error)
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
        enum Target {
            case command(EventLoopPromise<RESPValue>)
            /// One entry for the whole pipeline, handed each of its replies in turn.
            case pipeline(PipelineReplies)
        }

        let target: Target
        /// Uptime nanoseconds; `.max` for none.
        let deadline: UInt64

        func receive(_ reply: RESPValue) {
            switch target {
            case .command(let promise):
                if case .error(let message) = reply { promise.fail(RedisError.server(message)) } else { promise.succeed(reply) }
            case .pipeline(let replies):
                replies.receive(reply)
            }
        }

        func fail(_ error: any Error) {
            switch target {
            case .command(let promise): promise.fail(error)
            case .pipeline(let replies): replies.fail(error)
            }
        }
    }

    // State of the channel's event loop only, each access complete before the next begins (a
    // reply's promise is completed after `queue.receive` returns): not checked at run time, which
    // cost about a tenth of the client's CPU (a thread-local lookup per access, per command).
    private let decoder = RESPDecoder()
    @exclusivity(unchecked) private var queue = RedisCommandQueue<Pending>()
    @exclusivity(unchecked) private var timer: Scheduled<Void>?
    @exclusivity(unchecked) private var timerDeadline = UInt64.max
    /// Commands encoded since the last flush: written as one buffer (pipelines cost one write).
    @exclusivity(unchecked) private var output: ByteBuffer?
    @exclusivity(unchecked) private var outputPromise: EventLoopPromise<Void>?

    func write(context: ChannelHandlerContext, data: NIOAny, promise: EventLoopPromise<Void>?) {
        let request = unwrapOutboundIn(data)
        var deadline = UInt64.max
        if request.timeoutNanoseconds > 0 {
            deadline = context.eventLoop.now.uptimeNanoseconds &+ UInt64(request.timeoutNanoseconds)
            if deadline < timerDeadline { armTimer(at: deadline, context: context) }
        }
        guard !queue.isClosed else {
            request.fail(RedisError.connectionClosed)
            promise?.fail(RedisError.connectionClosed)
            return
        }
        if output == nil { output = context.channel.allocator.buffer(capacity: 4096) }
        switch request.work {
        case .command(let arguments, let reply):
            _ = queue.enqueue(Pending(target: .command(reply), deadline: deadline))
            RESPEncoder.encode(arguments, into: &output!)
        case .pipeline(let commands, let reply):
            guard !commands.isEmpty else {
                reply.succeed([])
                break
            }
            let replies = PipelineReplies(count: commands.count, promise: reply)
            _ = queue.enqueue(Pending(target: .pipeline(replies), deadline: deadline), replies: commands.count)
            RESPEncoder.encode(pipeline: commands, into: &output!)
        }
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
            for pending in queue.abandonAll(where: { $0.deadline <= now }) { pending.fail(RedisError.timeout) }
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
            try decoder.decode(input) { reply in
                let (pending, unexpected) = queue.receive()
                if unexpected { throw RedisError.protocolError("a reply nobody asked for") }
                pending?.receive(reply)
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
        for pending in queue.close() { pending.fail(error) }
    }
}

/// The last handler of a subscribed (pub/sub) channel: hands each published message to
/// `onMessage`; says when the server confirmed the subscription (`confirmed`); pings the server
/// every `heartbeat` and closes the connection when nothing was read for three (a half-open
/// socket never errors, and a subscription that hears nothing would miss purges unnoticed); a
/// sharded subscription the server ends closes the connection too.
final class RedisSubscriptionHandler: ChannelInboundHandler {
    typealias InboundIn = ByteBuffer

    private let decoder = RESPDecoder()
    private let onMessage: @Sendable (_ channel: String, _ payload: ByteBuffer) -> Void
    private let confirmed: EventLoopPromise<Void>
    private let heartbeat: TimeAmount
    private var lastHeard = NIODeadline.now()
    private var pinger: RepeatedTask?

    init(
        onMessage: @escaping @Sendable (_ channel: String, _ payload: ByteBuffer) -> Void, confirmed: EventLoopPromise<Void>,
        heartbeat: TimeAmount
    ) {
        self.onMessage = onMessage
        self.confirmed = confirmed
        self.heartbeat = heartbeat
    }

    func handlerAdded(context: ChannelHandlerContext) {
        lastHeard = .now()
        let bound = NIOLoopBound((handler: self, context: context), eventLoop: context.eventLoop)
        pinger = context.eventLoop.scheduleRepeatedTask(initialDelay: heartbeat, delay: heartbeat) { _ in
            bound.value.handler.beat(context: bound.value.context)
        }
    }

    func handlerRemoved(context: ChannelHandlerContext) {
        pinger?.cancel()
        pinger = nil
    }

    private func beat(context: ChannelHandlerContext) {
        guard context.channel.isActive else { return }
        if NIODeadline.now() - lastHeard > heartbeat * 3 {
            // Silent for three heartbeats: the server or the path to it is gone.
            context.close(promise: nil)
            return
        }
        var ping = context.channel.allocator.buffer(capacity: 14)
        RESPEncoder.encode(["PING"], into: &ping)
        context.writeAndFlush(NIOAny(ping), promise: nil)
    }

    func channelInactive(context: ChannelHandlerContext) {
        pinger?.cancel()
        pinger = nil
        confirmed.fail(RedisError.connectionClosed)
        context.fireChannelInactive()
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        lastHeard = .now()
        do {
            let input = unwrapInboundIn(data)
            try decoder.decode(input) { reply in
                if case .error(let message) = reply {
                    // The subscription was refused (MOVED: the map was out of date): nothing would
                    // ever arrive on it. Closed, so that the owner subscribes again.
                    confirmed.fail(RedisError.server(message))
                    context.close(promise: nil)
                    return
                }
                guard let parts = reply.array, parts.count == 3, let kind = parts[0].string else { return }
                switch kind {
                case "message", "smessage":
                    guard let channel = parts[1].string, let payload = parts[2].buffer else { return }
                    onMessage(channel, payload)
                case "subscribe", "ssubscribe":
                    confirmed.succeed()
                case "sunsubscribe":
                    // Never asked for: the node no longer serves the channel's slot (a failover or a
                    // migration). Closed, so that the owner subscribes again where it is served.
                    context.close(promise: nil)
                default:
                    break
                }
            }
        } catch {
            context.close(promise: nil)
        }
    }
}
