import NIOCore
import NIOHTTP1
import NIOHTTP2
import NIOSSL
import NIOTLS
import VitrineCore

/// How a node's accepted connections are set up: the composition root (VitrineNode) binds the
/// listeners and hands each new channel here, so that the handlers stay the proxy's own.
package enum ProxyChannels {
    /// A storefront connection on the proxy listener (`proxyProtocol`: it starts with a PROXY
    /// protocol header), or on the TLS listener (`tls`: the context its handshake starts from).
    /// On TLS, ALPN picks HTTP/2 or HTTP/1.1.
    package static func configureProxyConnection(
        _ channel: any Channel, proxy: ProxyContext, listings: Reloadable<Listings>, proxyProtocol: Bool = false,
        tls: NIOSSLContext? = nil
    ) throws {
        let pipeline = channel.pipeline.syncOperations
        // The PROXY header comes before the TLS hello: a load balancer writes it in the clear.
        if proxyProtocol { try pipeline.addHandler(ProxyProtocolDecoder()) }
        guard let tls else {
            try pipeline.addHandler(ClientConnectionHandler(proxy: proxy, listings: listings, scheme: "http"))
            return
        }
        try pipeline.addHandler(NIOSSLServerHandler(context: tls))
        try pipeline.addHandler(TLSHandshakeTimeout(timeout: .nanoseconds(Int64(proxy.timeouts.clientHeader.nanosecondsClamped))))
        let keeper = ProxyHeaderKeeper()
        if proxyProtocol { try pipeline.addHandler(keeper) }
        try pipeline.addHandler(
            ApplicationProtocolNegotiationHandler { result, channel in
                channel.eventLoop.makeCompletedFuture {
                    if case .negotiated("h2") = result {
                        try configureHTTP2(channel, proxy: proxy, listings: listings, proxyHeader: keeper.header)
                    } else {
                        try channel.pipeline.syncOperations.addHandler(ClientConnectionHandler(proxy: proxy, listings: listings, scheme: "https"))
                    }
                }
            })
    }

    /// An HTTP/2 connection: each stream is a request through the same request path as
    /// HTTP/1.1 (`HTTP2Connection`: streams in the connection's own state, no HTTP/1.1 between), with
    /// the same header limits, `limits.max_concurrent_streams` streams at once, flow control
    /// windows of 64 KiB per stream and 1 MiB per connection, and swift-nio-http2's defences
    /// (a client that resets streams in a loop, CVE-2023-44487, or sends too many control
    /// frames, is sent GOAWAY and closed; so is one that causes any other connection error).
    /// Idle for `timeouts.keepalive` (from its start when it opens no stream), or drained, the
    /// connection is closed gracefully (GOAWAY, then the open streams finish): `HTTP2Connection`.
    static func configureHTTP2(_ channel: any Channel, proxy: ProxyContext, listings: Reloadable<Listings>, proxyHeader: ProxyProtocolHeader?) throws {
        var connection = NIOHTTP2Handler.ConnectionConfiguration()
        connection.initialSettings = [
            HTTP2Setting(parameter: .maxConcurrentStreams, value: proxy.limits.maxConcurrentStreams),
            HTTP2Setting(parameter: .maxHeaderListSize, value: proxy.limits.maxHeaderBytes),
            HTTP2Setting(parameter: .initialWindowSize, value: 65535),
        ]
        // Requests' fields are checked by `HTTP2RequestFields` (the rules `RequestDecoder` holds
        // HTTP/1.1 heads to, fuzzed), and answers' fields are ours (stored or from an origin's
        // parsed head, names lower-cased): swift-nio-http2's second pass over every field of both
        // cost a seventh of an h2 hit. Content-length checking stays on.
        connection.headerBlockValidation = .disabled
        // Windows are `HTTP2Connection`'s to open (1 MiB for the connection, 64 KiB a stream).
        let stream = NIOHTTP2Handler.StreamConfiguration()
        let pipeline = channel.pipeline.syncOperations
        // Between TLS and the HTTP/2 handler: it sees the frames written, and closes after a
        // connection error's GOAWAY.
        try pipeline.addHandler(HTTP2ConnectionErrorCloser())
        // No multiplexer: the streams are served in the connection's own state (`HTTP2Connection`),
        // which also keeps its idle time and graceful shutdown (swift-nio-http2's management
        // handler re-armed a timer as each stream opened and closed: a twentieth of an h2 hit).
        try pipeline.addHandler(NIOHTTP2Handler(mode: .server, frameDelegate: nil, connectionConfiguration: connection, streamConfiguration: stream))
        try pipeline.addHandler(HTTP2Connection(proxy: proxy, listings: listings, proxyHeader: proxyHeader))
    }

    /// A connection on the admin listener, or (`access: .probes`) on the probe listener.
    package static func configureAdminConnection(_ channel: any Channel, api: AdminAPI, access: AdminAPI.Access = .admin) throws {
        try channel.pipeline.syncOperations.configureHTTPServerPipeline(withErrorHandling: true)
        try channel.pipeline.syncOperations.addHandler(AdminConnectionHandler(api: api, access: access))
    }
}

/// Keeps the PROXY protocol header a connection began with, for its HTTP/2 streams (each has a
/// request path of its own, which needs to know whom the connection is from).
final class ProxyHeaderKeeper: ChannelInboundHandler, RemovableChannelHandler {
    typealias InboundIn = Any
    private(set) var header: ProxyProtocolHeader?

    func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
        if let header = event as? ProxyProtocolHeader { self.header = header }
        context.fireUserInboundEventTriggered(event)
    }
}
