import NIOCore
import NIOHTTP1

/// Reads an admin request (body up to 1 MiB) and writes the API's answer. Runs behind NIO's
/// standard server pipeline: the admin API is not a hot path.
final class AdminConnectionHandler: ChannelInboundHandler {
    typealias InboundIn = HTTPServerRequestPart
    typealias OutboundOut = HTTPServerResponsePart

    static let maxBody = 1 << 20

    private let api: AdminAPI
    private let access: AdminAPI.Access
    private var head: HTTPRequestHead?
    private var body = ByteBuffer()
    private var tooLarge = false

    init(api: AdminAPI, access: AdminAPI.Access = .admin) {
        self.api = api
        self.access = access
    }

    func channelRead(context: ChannelHandlerContext, data: NIOAny) {
        switch unwrapInboundIn(data) {
        case .head(let head):
            self.head = head
            body.clear()
            tooLarge = false
        case .body(var buffer):
            if body.readableBytes + buffer.readableBytes > Self.maxBody {
                tooLarge = true
            } else if !tooLarge {
                body.writeBuffer(&buffer)
            }
        case .end:
            guard let head else { return }
            self.head = nil
            let response =
                tooLarge
                ? AdminResponse.error(.payloadTooLarge, "body_too_large", "admin request bodies are limited to 1 MiB")
                : api.handle(
                    AdminRequest(method: head.method, uri: head.uri, headers: head.headers, body: body, eventLoop: context.eventLoop),
                    access: access)
            write(response, keepAlive: head.isKeepAlive && !tooLarge, context: context)
        }
    }

    private func write(_ response: AdminResponse, keepAlive: Bool, context: ChannelHandlerContext) {
        var headers = HTTPHeaders()
        headers.add(name: "Content-Type", value: response.contentType)
        headers.add(name: "Content-Length", value: String(response.body.count))
        headers.add(name: "Cache-Control", value: "no-store")
        if !keepAlive { headers.add(name: "Connection", value: "close") }
        context.write(wrapOutboundOut(.head(HTTPResponseHead(version: .http1_1, status: response.status, headers: headers))), promise: nil)
        context.write(wrapOutboundOut(.body(.byteBuffer(ByteBuffer(bytes: response.body)))), promise: nil)
        let done = context.writeAndFlush(wrapOutboundOut(.end(nil)))
        if !keepAlive {
            done.assumeIsolated().whenComplete { _ in context.close(promise: nil) }
        }
    }
}
