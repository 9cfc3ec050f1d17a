import NIOCore
import NIOSSL
import VitrineConfig
import VitrineCore

/// One origin's connection pools, one per event loop. A client connection takes its origin
/// connection from the pool of its own loop, so an exchange never crosses threads. A reload that
/// leaves an origin's settings as they were keeps its pools (and their warm connections).
package final class OriginPools: @unchecked Sendable {
    // Safe: built once in `init`, then only read; each pool is used on its own loop only.
    private let pools: [ObjectIdentifier: OriginPool]
    let name: String
    let settings: OriginSettings
    let maxHeaderBytes: Int
    /// Why an `https://` origin's TLS client cannot be made (its CA file does not load); nil
    /// when it can, or for a cleartext origin. A node refuses to start, or a reload to apply,
    /// with one.
    package let tlsFailure: String?

    init(name: String, settings: OriginSettings, maxHeaderBytes: Int, group: any EventLoopGroup) {
        self.name = name
        self.settings = settings
        self.maxHeaderBytes = maxHeaderBytes
        var tls: OriginTLS?
        var tlsFailure: String?
        if settings.url.tls {
            do {
                // SNI and the name checked: an address literal is sent no name (SNI carries host
                // names only) and is checked against the certificate's IP names.
                let host = settings.url.host
                tls = OriginTLS(context: try Self.clientContext(settings), serverName: settings.serverName ?? (IPAddress(parsing: host) == nil ? host : nil))
            } catch {
                tlsFailure = "\(settings.caFile ?? "the system's roots"): \(error)"
            }
        }
        self.tlsFailure = tlsFailure
        var pools: [ObjectIdentifier: OriginPool] = [:]
        for loop in group.makeIterator() {
            pools[ObjectIdentifier(loop)] = OriginPool(
                name: name, settings: settings, eventLoop: loop, maxHeaderBytes: maxHeaderBytes, tls: tls)
        }
        self.pools = pools
    }

    /// The TLS client every connection to an `https://` origin starts from: one per origin,
    /// shared by its pools (making one reads the trust roots). The origin's certificate is
    /// always verified, against the system's roots or the origin's `ca`, for the name it is
    /// reached by (`server_name`, else the URL's host).
    static func clientContext(_ settings: OriginSettings) throws -> NIOSSLContext {
        var configuration = TLSConfiguration.makeClientConfiguration()
        configuration.minimumTLSVersion = .tlsv12
        if let caFile = settings.caFile { configuration.trustRoots = .file(caFile) }
        configuration.applicationProtocols = ["http/1.1"]
        return try NIOSSLContext(configuration: configuration)
    }

    /// The pool for `loop`, which must be one of the group's (the only loops that run connections).
    func pool(on loop: any EventLoop) -> OriginPool {
        guard let pool = pools[ObjectIdentifier(loop)] else {
            preconditionFailure("an event loop outside the node's group")
        }
        return pool
    }

    /// Closes idle connections on every loop (at shutdown, and when a reload dropped the origin).
    package func closeIdle() {
        for (_, pool) in pools {
            let transfer = UnsafeTransfer(pool)
            pool.eventLoop.execute { transfer.value.closeIdle() }
        }
    }
}

/// Carries a non-Sendable value to the event loop that owns it.
struct UnsafeTransfer<Value>: @unchecked Sendable {
    let value: Value
    init(_ value: Value) { self.value = value }
}

/// How connections to an `https://` origin start: its TLS client, and the name sent as SNI and
/// checked in its certificate (nil for an address: checked against the certificate's IP names).
struct OriginTLS {
    let context: NIOSSLContext
    let serverName: String?
}
