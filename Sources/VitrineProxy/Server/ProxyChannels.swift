import NIOCore
import NIOHTTP1
import NIOSSL

/// How a node's accepted connections are set up: the composition root (VitrineNode) binds the
/// listeners and hands each new channel here, so that the handlers stay the proxy's own.
package enum ProxyChannels {
    /// A storefront connection on the proxy listener (`proxyProtocol`: it starts with a PROXY
    /// protocol header), or on the TLS listener (`tls`: the context its handshake starts from).
    package static func configureProxyConnection(
        _ channel: any Channel, proxy: ProxyContext, listings: Reloadable<Listings>, proxyProtocol: Bool = false,
        tls: NIOSSLContext? = nil
    ) throws {
        // The PROXY header comes before the TLS hello: a load balancer writes it in the clear.
        if proxyProtocol { try channel.pipeline.syncOperations.addHandler(ProxyProtocolDecoder()) }
        if let tls { try channel.pipeline.syncOperations.addHandler(NIOSSLServerHandler(context: tls)) }
        try channel.pipeline.syncOperations.addHandler(
            ClientConnectionHandler(proxy: proxy, listings: listings, scheme: tls == nil ? "http" : "https"))
    }

    /// A connection on the admin listener, or (`access: .probes`) on the probe listener.
    package static func configureAdminConnection(_ channel: any Channel, api: AdminAPI, access: AdminAPI.Access = .admin) throws {
        try channel.pipeline.syncOperations.configureHTTPServerPipeline(withErrorHandling: true)
        try channel.pipeline.syncOperations.addHandler(AdminConnectionHandler(api: api, access: access))
    }
}
