import NIOCore
import NIOHTTP1

/// One keep-alive connection to an origin: the last handler of its channel. It carries one
/// exchange at a time, times it out, and returns itself to its pool when the response ended
/// cleanly and both sides allow keep-alive.
///
/// The channel runs with auto-read off: the connection reads only when the delegate can take
/// more (backpressure from a slow client reaches the origin), and while idle, to notice the
/// origin closing it.
final class OriginConnection: ChannelInboundHandler {
    typealias InboundIn = HTTPClientResponsePart
    typealias OutboundOut = HTTPClientRequestPart

    private enum State {
        case idle
        case awaitingHead
        case receivingBody
        case closed
    }

    private var context: ChannelHandlerContext?
    private weak var pool: OriginPool?
    private var state = State.idle
    private var delegate: (any OriginResponseDelegate)?
    private var firstByteTimer: Scheduled<Void>?
    private var totalTimer: Scheduled<Void>?
    private var readDeferred = false
    private var requestKeepAlive = true
    private var responseKeepAlive = true
    private var requestComplete = false
    /// Exchanges completed on this connection.
    private(set) var completedExchanges = 0

    init(pool: OriginPool) {
        self.pool = pool
    }

    var isUsable: Bool { state == .idle && context?.channel.isActive == true }

    func handlerAdded(context: ChannelHandlerContext) {
        self.context = context
    }

    func channelActive(context: ChannelHandlerContext) {
        context.read()
    }

    // MARK: Requests

    /// Sends a request head; body parts follow through `writeBody` and `endRequest`.
    func execute(
        _ head: HTTPRequestHead,
        delegate: any OriginResponseDelegate,
        firstByteTimeout: TimeAmount,
        totalTimeout: TimeAmount
    ) {
        guard let context, state == .idle else {
            delegate.originFailed(.connectionClosed(beforeAnyResponseByte: true, reused: completedExchanges > 0))
            return
        }
        self.delegate = delegate
        self.state = .awaitingHead
        self.requestKeepAlive = head.isKeepAlive
        self.requestComplete = false
        let loop = context.eventLoop.assumeIsolated()
        firstByteTimer = loop.scheduleTask(in: firstByteTimeout) { [self] in fail(.firstByteTimeout) }
        totalTimer = loop.scheduleTask(in: totalTimeout) { [self] in fail(.totalTimeout) }
        context.write(wrapOutboundOut(.head(head)), promise: nil)
    }

    func writeBody(_ buffer: ByteBuffer) {
        guard let context, state == .awaitingHead || state == .receivingBody else { return }
        context.writeAndFlush(wrapOutboundOut(.body(.byteBuffer(buffer))), promise: nil)
    }

    func endRequest() {
        guard let context, state == .awaitingHead || state == .receivingBody else { return }
        requestComplete = true
        context.writeAndFlush(wrapOutboundOut(.end(nil)), promise: nil)
        context.read()
    }

    /// The delegate can take more data again.
    func resumeReading() {
        guard readDeferred, let context else { return }
        readDeferred = false
        context.read()
    }

    /// Abandons the exchange: the connection is closed, never reused.
    func cancel() {
        delegate = nil
        close()
    }

    // MARK: Responses

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let head):
            guard state == .awaitingHead, let delegate else {
                // Bytes on an idle connection: the origin is confused; don't reuse it.
                close()
                return
            }
            if head.status.code < 200 {
                // 101 would switch protocols, which the proxy never asks for: not HTTP any more.
                guard head.status != .switchingProtocols else {
                    fail(.protocolError("101 Switching Protocols without an Upgrade"))
                    return
                }
                delegate.originInterimResponse(head)
                return
            }
            firstByteTimer?.cancel()
            firstByteTimer = nil
            state = .receivingBody
            responseKeepAlive = head.isKeepAlive
            delegate.originResponseHead(head)
        case .body(let buffer):
            delegate?.originResponseBody(buffer)
        case .end:
            guard state == .receivingBody else { return }
            finishExchange()
        }
    }

    func channelReadComplete(context: ChannelHandlerContext) {
        if let delegate, !delegate.originMayContinue {
            if !readDeferred { delegate.originPaused() }
            readDeferred = true
        } else {
            context.read()
        }
    }

    func channelInactive(context: ChannelHandlerContext) {
        let wasIdle = state == .idle
        let failure = OriginFailure.connectionClosed(
            beforeAnyResponseByte: state == .awaitingHead, reused: completedExchanges > 0)
        if !wasIdle { fail(failure) }
        markClosed()
    }

    func errorCaught(context: ChannelHandlerContext, error: any Error) {
        fail(.protocolError(String(describing: error)))
    }

    private func finishExchange() {
        cancelTimers()
        completedExchanges += 1
        let delegate = self.delegate
        self.delegate = nil
        if requestKeepAlive && responseKeepAlive && requestComplete {
            state = .idle
            pool?.release(self)
        } else {
            close()
        }
        delegate?.originResponseEnd()
    }

    private func fail(_ failure: OriginFailure) {
        cancelTimers()
        let delegate = self.delegate
        self.delegate = nil
        close()
        delegate?.originFailed(failure)
    }

    private func close() {
        guard state != .closed else { return }
        markClosed()
        context?.close(promise: nil)
    }

    private func markClosed() {
        guard state != .closed else { return }
        state = .closed
        cancelTimers()
        pool?.connectionClosed(self)
    }

    private func cancelTimers() {
        firstByteTimer?.cancel()
        totalTimer?.cancel()
        firstByteTimer = nil
        totalTimer = nil
    }
}
