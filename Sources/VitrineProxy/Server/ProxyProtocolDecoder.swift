import NIOCore
import VitrineCore

/// Reads the PROXY protocol header (v1 or v2) a layer-4 load balancer writes first, on a
/// listener that expects one (`server.proxy_protocol`): tells the connection's handler whom the
/// connection is from (a `ProxyProtocolHeader` user event), passes the bytes after the header on,
/// and leaves the pipeline. A connection that does not start with a valid header is closed.
final class ProxyProtocolDecoder: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = ByteBuffer
    typealias InboundOut = ByteBuffer

    private var buffered: ByteBuffer?
    private var done = false

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        var bytes = unwrapInboundIn(data)
        guard !done else {
            context.fireChannelRead(data)
            return
        }
        if var pending = buffered.take() {
            pending.writeBuffer(&bytes)
            bytes = pending
        }
        switch bytes.withUnsafeReadableBytes({ ProxyProtocolHeader.parse($0) }) {
        case .incomplete:
            buffered = bytes
        case .invalid:
            done = true
            context.close(promise: nil)
        case .header(let header, let length):
            done = true
            bytes.moveReaderIndex(forwardBy: length)
            context.fireUserInboundEventTriggered(header)
            if bytes.readableBytes > 0 { context.fireChannelRead(wrapInboundOut(bytes)) }
            context.pipeline.syncOperations.removeHandler(context: context, promise: nil)
        }
    }
}
