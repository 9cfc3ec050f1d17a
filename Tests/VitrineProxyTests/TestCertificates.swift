import Foundation
import NIOCore
import NIOPosix
import NIOSSL
import NIOTLS
import VitrineConfig
@testable import VitrineProxy

/// The test CA and the certificates it signed (`Tests/Fixtures/tls`, made by
/// `scripts/make-test-certificates.sh`), and TLS clients that use them.
enum TestCertificates {
    static let directory = URL(fileURLWithPath: #filePath).deletingLastPathComponent()
        .appendingPathComponent("../Fixtures/tls").standardized.path

    /// `shop` (shop.example, www.shop.example, localhost), `other` (other.example,
    /// *.other.example), `expired` (expired.example, expired in 2021).
    static func files(_ name: String) -> CertificateFiles {
        CertificateFiles(certificate: "\(directory)/\(name).pem", key: "\(directory)/\(name).key")
    }

    static func listener(_ names: String...) -> TLSSettings {
        var settings = TLSSettings(listen: ListenAddress(host: "127.0.0.1", port: 0), certificates: names.map { files($0) })
        settings.checkInterval = .zero
        return settings
    }

    /// A client that trusts the test CA only, and checks the name it asks for.
    static func client(
        maximumVersion: TLSVersion? = nil, cipherSuites: String? = nil, applicationProtocols: [String] = []
    ) throws -> NIOSSLContext {
        var configuration = TLSConfiguration.makeClientConfiguration()
        configuration.trustRoots = .file("\(directory)/ca.pem")
        configuration.maximumTLSVersion = maximumVersion
        if let cipherSuites { configuration.cipherSuites = cipherSuites }
        configuration.applicationProtocols = applicationProtocols
        return try NIOSSLContext(configuration: configuration)
    }

    /// Completes a handshake with 127.0.0.1:`port`, asking for `serverName` (SNI; nil: none,
    /// and then no name is checked, only the chain); returns what the server presented and the
    /// protocol ALPN settled on. Throws when the client refuses the server's certificate.
    static func handshake(
        port: Int, serverName: String?, context: NIOSSLContext? = nil
    ) async throws -> (certificate: NIOSSLCertificate, alpn: String?) {
        var configuration = TLSConfiguration.makeClientConfiguration()
        configuration.trustRoots = .file("\(directory)/ca.pem")
        if serverName == nil { configuration.certificateVerification = .noHostnameVerification }
        let tls = try context ?? NIOSSLContext(configuration: configuration)
        let done = MultiThreadedEventLoopGroup.singleton.next().makePromise(of: String?.self)
        let channel = try await ClientBootstrap(group: MultiThreadedEventLoopGroup.singleton)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    try channel.pipeline.syncOperations.addHandler(NIOSSLClientHandler(context: tls, serverHostname: serverName))
                    try channel.pipeline.syncOperations.addHandler(HandshakeWatcher(done: done))
                }
            }
            .connect(host: "127.0.0.1", port: port).get()
        do {
            let alpn = try await done.futureResult.get()
            let certificate = try await channel.nioSSL_peerCertificate().get()
            try? await channel.close()
            guard let certificate else { throw ChannelError.inappropriateOperationForState }
            return (certificate, alpn)
        } catch {
            try? await channel.close()
            throw error
        }
    }

    /// The DNS names a certificate lists (as the listener reads them).
    static func names(_ certificate: NIOSSLCertificate) -> [String] {
        ServerCertificates.dnsNames(of: certificate)
    }

    private final class HandshakeWatcher: ChannelInboundHandler, Sendable {
        typealias InboundIn = ByteBuffer
        let done: EventLoopPromise<String?>

        init(done: EventLoopPromise<String?>) { self.done = done }

        func userInboundEventTriggered(context: ChannelHandlerContext, event: Any) {
            if case .handshakeCompleted(let negotiated) = event as? TLSUserEvent { done.succeed(negotiated) }
            context.fireUserInboundEventTriggered(event)
        }

        func errorCaught(context: ChannelHandlerContext, error: any Error) {
            done.fail(error)
            context.close(promise: nil)
        }

        func channelInactive(context: ChannelHandlerContext) {
            done.fail(ChannelError.ioOnClosedChannel)
        }
    }
}
