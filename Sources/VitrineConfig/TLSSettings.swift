/// A TLS listener: where it listens and the certificates it answers with.
///
/// The certificates are read from their files when the node starts, again on a config reload,
/// and whenever the files change (checked every `checkInterval`): a renewal is served without a
/// restart. Moving the listener needs one.
public struct TLSSettings: Sendable, Equatable {
    public var listen: ListenAddress
    /// In order: the first answers client hellos with no server name, or with one no
    /// certificate claims.
    public var certificates: [CertificateFiles]
    public var minimumVersion = TLSMinimumVersion.tls12
    /// How often the certificate files are checked for a change; zero: only on a config reload.
    public var checkInterval: Duration = .seconds(5)
    /// Offer HTTP/2 by ALPN (`h2`, then `http/1.1`); false: HTTP/1.1 only.
    public var http2 = true

    public init(listen: ListenAddress, certificates: [CertificateFiles]) {
        self.listen = listen
        self.certificates = certificates
    }
}

/// One certificate: its chain and its private key, as PEM files.
public struct CertificateFiles: Sendable, Equatable {
    /// The chain, leaf first.
    public var certificate: String
    public var key: String
    /// The server names it answers for; nil: the DNS names the certificate itself lists.
    public var names: [String]?

    public init(certificate: String, key: String, names: [String]? = nil) {
        self.certificate = certificate
        self.key = key
        self.names = names
    }
}

/// The oldest TLS version a listener accepts. Both keep modern cipher defaults (forward secret
/// AEAD suites only, as BoringSSL's defaults are); 1.0 and 1.1 are not offered at all.
public enum TLSMinimumVersion: String, Sendable, Equatable, CaseIterable {
    case tls12 = "1.2"
    case tls13 = "1.3"
}
