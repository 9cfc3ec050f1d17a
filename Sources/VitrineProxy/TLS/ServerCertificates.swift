import Foundation
import NIOSSL
import Synchronization
import VitrineConfig
import VitrineCore

/// A TLS listener's certificates, read from their files, and the context every new
/// connection's handshake starts from (its SNI callback picks the certificate by name).
///
/// Replaced whole, under a lock, when the files are read again (a config reload, or a change
/// the file check sees): handshakes already started keep the context they began with, new ones
/// take the new one. Files that do not load (a renewal half-written, a key that does not match
/// its certificate) leave the running certificates in place; the caller says so, loudly.
package final class ServerCertificates: Sendable {
    private struct Snapshot {
        let context: NIOSSLContext
        let settings: TLSSettings
        /// Each certificate's server names, in order.
        let names: [[String]]
        /// The files' identities and modification times when they were read.
        let stamps: [FileStamp]
    }

    private let snapshot: Mutex<Snapshot>

    /// The oldest TLS 1.2 suites still offered: forward secret (ECDHE) AEAD ones only, as
    /// Mozilla's "intermediate" profile has them. TLS 1.3's suites are BoringSSL's own.
    package static let cipherSuites = [
        "ECDHE-ECDSA-AES128-GCM-SHA256", "ECDHE-RSA-AES128-GCM-SHA256",
        "ECDHE-ECDSA-AES256-GCM-SHA384", "ECDHE-RSA-AES256-GCM-SHA384",
        "ECDHE-ECDSA-CHACHA20-POLY1305", "ECDHE-RSA-CHACHA20-POLY1305",
    ].joined(separator: ":")

    /// Reads the certificates; throws `ServerCertificatesError` naming the file that does not load.
    package init(_ settings: TLSSettings) throws {
        snapshot = Mutex(try Self.load(settings))
    }

    /// The context a new connection's handshake starts from.
    package var context: NIOSSLContext { snapshot.withLock { $0.context } }

    /// The server names of the certificates now served, in order.
    package var names: [[String]] { snapshot.withLock { $0.names } }

    /// Reads `settings`' files again and serves them from the next handshake on. On error the
    /// running certificates stay.
    package func reload(_ settings: TLSSettings) throws {
        let fresh = try Self.load(settings)
        snapshot.withLock { $0 = fresh }
    }

    /// Reads the files again if one of them changed (or was replaced) since they were read;
    /// returns whether the served certificates changed. On error the running ones stay, and the
    /// next check tries again.
    package func reloadIfFilesChanged() throws -> Bool {
        let (settings, stamps) = snapshot.withLock { ($0.settings, $0.stamps) }
        guard Self.stamps(of: settings) != stamps else { return false }
        try reload(settings)
        return true
    }

    private static func load(_ settings: TLSSettings) throws -> Snapshot {
        let stamps = stamps(of: settings)
        var entries: [(names: [String], value: Credentials)] = []
        var loaded: [[String]] = []
        for files in settings.certificates {
            let chain: [NIOSSLCertificate]
            do {
                chain = try NIOSSLCertificate.fromPEMFile(files.certificate)
            } catch {
                throw ServerCertificatesError(file: files.certificate, "not a PEM certificate chain (\(error))")
            }
            guard let leaf = chain.first else { throw ServerCertificatesError(file: files.certificate, "holds no certificate") }
            let key: NIOSSLPrivateKey
            do {
                key = try NIOSSLPrivateKey(file: files.key, format: .pem)
            } catch {
                throw ServerCertificatesError(file: files.key, "not a PEM private key (\(error))")
            }
            let credentials = Credentials(chain: chain.map { .certificate($0) }, key: .privateKey(key))
            // A context of its own checks that the key is the certificate's (BoringSSL's
            // SSL_CTX_check_private_key): a mismatch is found now, not at some client's hello.
            do {
                _ = try NIOSSLContext(configuration: serverConfiguration(credentials, settings: settings))
            } catch {
                throw ServerCertificatesError(file: files.key, "does not go with \(files.certificate) (\(error))")
            }
            let names = files.names ?? dnsNames(of: leaf)
            entries.append((names, credentials))
            loaded.append(names)
        }
        guard let table = ServerNameTable(entries) else {
            throw ServerCertificatesError(file: "(none)", "a TLS listener needs at least one certificate")
        }
        var configuration = serverConfiguration(table.defaultValue, settings: settings)
        // With one certificate there is nothing to choose: no callback, which would suspend and
        // resume every handshake at its hello.
        if entries.count > 1 {
            configuration.sslContextCallback = { hello, promise in
                // Runs once per handshake, on its event loop: a dictionary lookup, no file access.
                let chosen = table.value(for: hello.serverHostname)
                guard chosen !== table.defaultValue else { return promise.succeed(.noChanges) }
                var override = NIOSSLContextConfigurationOverride()
                override.certificateChain = chosen.chain
                override.privateKey = chosen.key
                promise.succeed(override)
            }
        }
        let context: NIOSSLContext
        do {
            context = try NIOSSLContext(configuration: configuration)
        } catch {
            throw ServerCertificatesError(file: settings.certificates[0].certificate, "cannot make a TLS context (\(error))")
        }
        return Snapshot(context: context, settings: settings, names: loaded, stamps: stamps)
    }

    private static func serverConfiguration(_ credentials: Credentials, settings: TLSSettings) -> TLSConfiguration {
        var configuration = TLSConfiguration.makeServerConfiguration(certificateChain: credentials.chain, privateKey: credentials.key)
        configuration.minimumTLSVersion = settings.minimumVersion == .tls13 ? .tlsv13 : .tlsv12
        configuration.cipherSuites = cipherSuites
        // h2 first: a client that speaks both gets HTTP/2.
        configuration.applicationProtocols = settings.http2 ? ["h2", "http/1.1"] : ["http/1.1"]
        return configuration
    }

    /// The DNS names a certificate lists (its subject alternative names): what clients check it
    /// against (RFC 6125; browsers ignore the common name).
    static func dnsNames(of certificate: NIOSSLCertificate) -> [String] {
        certificate._subjectAlternativeNames().compactMap { name in
            guard name.nameType == .dnsName else { return nil }
            return name.contents.withUnsafeBufferPointer { String(decoding: $0, as: UTF8.self) }
        }
    }

    private static func stamps(of settings: TLSSettings) -> [FileStamp] {
        settings.certificates.flatMap { [FileStamp(path: $0.certificate), FileStamp(path: $0.key)] }
    }
}

/// A certificate chain and its key, as a handshake is given them.
private final class Credentials: Sendable {
    let chain: [NIOSSLCertificateSource]
    let key: NIOSSLPrivateKeySource

    init(chain: [NIOSSLCertificateSource], key: NIOSSLPrivateKeySource) {
        self.chain = chain
        self.key = key
    }
}

/// Which file, and what about it stops it loading.
package struct ServerCertificatesError: Error, CustomStringConvertible {
    package let file: String
    package let reason: String

    init(file: String, _ reason: String) {
        self.file = file
        self.reason = reason
    }

    package var description: String { "\(file): \(reason)" }
}

/// What tells one version of a file from the next: its inode (a renewal that renames a new file
/// into place), its size and its modification time. A missing file has a stamp of its own.
struct FileStamp: Equatable {
    let inode: UInt64
    let size: UInt64
    let modified: Double

    init(path: String) {
        let attributes = try? FileManager.default.attributesOfItem(atPath: path)
        inode = (attributes?[.systemFileNumber] as? NSNumber)?.uint64Value ?? 0
        size = (attributes?[.size] as? NSNumber)?.uint64Value ?? 0
        modified = (attributes?[.modificationDate] as? Date)?.timeIntervalSince1970 ?? 0
    }
}
