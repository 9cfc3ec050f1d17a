import NIOCore
import NIOSSL

/// TLS for `rediss://` URLs, through swift-nio-ssl: the server's certificate is verified against
/// the URL's CA file (`ssl_ca_certs`) or the system's roots, and its name against the host.
public enum RedisTLS {
    /// The client context for `url`; nil for a plain `redis://` URL. Built once per client and
    /// shared by its connections (building one reads the trust roots).
    public static func context(for url: RedisURL) throws -> NIOSSLContext? {
        guard url.tls else { return nil }
        var configuration = TLSConfiguration.makeClientConfiguration()
        if let file = url.caCertificatesFile {
            do {
                configuration.trustRoots = .certificates(try NIOSSLCertificate.fromPEMFile(file))
            } catch {
                throw RedisError.invalidURL("ssl_ca_certs: cannot read CA certificates from \(file): \(error)")
            }
        }
        return try NIOSSLContext(configuration: configuration)
    }

    /// The handler that makes `channel` TLS, sending the host as SNI unless it is an IP address
    /// (then the certificate is checked against the address connected to).
    static func addHandler(context: NIOSSLContext, host: String, to channel: any Channel) throws {
        let isAddress = (try? SocketAddress(ipAddress: host, port: 0)) != nil
        let handler = try NIOSSLClientHandler(context: context, serverHostname: isAddress ? nil : host)
        try channel.pipeline.syncOperations.addHandler(handler)
    }
}
