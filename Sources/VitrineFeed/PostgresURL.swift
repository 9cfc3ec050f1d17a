import Foundation
import NIOSSL
import PostgresNIO

/// `postgres://user[:password]@host[:port]/database[?sslmode=...&sslrootcert=...]` as a
/// postgres-nio configuration, with TLS as libpq users expect it:
///
/// | `sslmode` | TLS | certificate checked |
/// |---|---|---|
/// | `disable` | never | - |
/// | `allow`, `prefer` (the default) | if the server offers it | no |
/// | `require` | always | no; against `sslrootcert` when one is named (as libpq does) |
/// | `verify-ca` | always | chain, against `sslrootcert` or the system's roots |
/// | `verify-full` | always | chain and host name (or address) |
public struct PostgresURL: Sendable, Equatable, CustomStringConvertible {
    public enum SSLMode: String, Sendable, Equatable, CaseIterable {
        case disable, allow, prefer, require
        case verifyCA = "verify-ca"
        case verifyFull = "verify-full"
    }

    public var host: String
    public var port: Int
    public var user: String
    public var password: String?
    public var database: String
    public var sslMode: SSLMode = .prefer
    /// A PEM file of the CAs to trust (`sslrootcert`); nil, or `system`, for the system's roots.
    public var sslRootCertificates: String?

    public init(parsing text: String) throws {
        let prefixes = ["postgres://", "postgresql://"]
        guard let prefix = prefixes.first(where: { text.hasPrefix($0) }) else {
            throw FeedError.invalidURL("expected postgres://user@host:port/database, got \(text)")
        }
        var rest = Substring(text.dropFirst(prefix.count))
        var query: Substring = ""
        if let mark = rest.firstIndex(of: "?") {
            query = rest[rest.index(after: mark)...]
            rest = rest[..<mark]
        }
        var user = "postgres"
        var password: String?
        if let at = rest.lastIndex(of: "@") {
            let credentials = rest[..<at]
            rest = rest[rest.index(after: at)...]
            if let colon = credentials.firstIndex(of: ":") {
                user = String(credentials[..<colon])
                password = String(credentials[credentials.index(after: colon)...]).removingPercentEncoding
            } else {
                user = String(credentials)
            }
        }
        let authority = rest.prefix { $0 != "/" }
        let path = rest.dropFirst(authority.count).dropFirst()
        if let colon = authority.lastIndex(of: ":") {
            host = String(authority[..<colon])
            guard let port = Int(authority[authority.index(after: colon)...]), (1...65535).contains(port) else {
                throw FeedError.invalidURL("bad port in \(text)")
            }
            self.port = port
        } else {
            host = authority.isEmpty ? "127.0.0.1" : String(authority)
            port = 5432
        }
        self.user = user
        self.password = password
        self.database = path.isEmpty ? user : String(path)
        for item in query.split(separator: "&") where !item.isEmpty {
            let pair = item.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
            let name = String(pair[0])
            let value = pair.count == 2 ? String(pair[1]).removingPercentEncoding ?? String(pair[1]) : ""
            switch name {
            case "sslmode":
                guard let mode = SSLMode(rawValue: value) else {
                    throw FeedError.invalidURL(
                        "sslmode=\(value) is not one of \(SSLMode.allCases.map(\.rawValue).joined(separator: ", "))")
                }
                sslMode = mode
            case "sslrootcert":
                sslRootCertificates = value == "system" || value.isEmpty ? nil : value
            default:
                // Other libpq parameters (application_name, connect_timeout, ...) do not change
                // what is connected to; they are not applied.
                continue
            }
        }
    }

    /// The TLS configuration (nil: no TLS), and whether TLS is required. Throws, naming the
    /// file, when `sslrootcert` cannot be read.
    public func tlsConfiguration() throws -> (configuration: TLSConfiguration, required: Bool)? {
        guard sslMode != .disable else { return nil }
        var configuration = TLSConfiguration.makeClientConfiguration()
        if let file = sslRootCertificates {
            do {
                configuration.trustRoots = .certificates(try NIOSSLCertificate.fromPEMFile(file))
            } catch {
                throw FeedError.invalidURL("sslrootcert: cannot read CA certificates from \(file): \(error)")
            }
        }
        switch sslMode {
        case .disable, .allow, .prefer:
            configuration.certificateVerification = .none
            return (configuration, false)
        case .require:
            configuration.certificateVerification = sslRootCertificates == nil ? .none : .noHostnameVerification
        case .verifyCA:
            configuration.certificateVerification = .noHostnameVerification
        case .verifyFull:
            configuration.certificateVerification = .fullVerification
        }
        return (configuration, true)
    }

    /// For one connection (the change feed's).
    public func configuration() throws -> PostgresConnection.Configuration {
        let tls: PostgresConnection.Configuration.TLS
        if let (configuration, required) = try tlsConfiguration() {
            let context = try NIOSSLContext(configuration: configuration)
            tls = required ? .require(context) : .prefer(context)
        } else {
            tls = .disable
        }
        return PostgresConnection.Configuration(host: host, port: port, username: user, password: password, database: database, tls: tls)
    }

    /// The same, for a `PostgresClient` (a pool).
    public func clientConfiguration() throws -> PostgresClient.Configuration {
        let tls: PostgresClient.Configuration.TLS
        if let (configuration, required) = try tlsConfiguration() {
            tls = required ? .require(configuration) : .prefer(configuration)
        } else {
            tls = .disable
        }
        return PostgresClient.Configuration(host: host, port: port, username: user, password: password, database: database, tls: tls)
    }

    public var description: String {
        "postgres://\(user)@\(host):\(port)/\(database)" + (sslMode == .prefer ? "" : "?sslmode=\(sslMode.rawValue)")
    }
}

public enum FeedError: Error, Sendable, Equatable {
    case invalidURL(String)
    case heartbeatTimeout
    case listenEnded
    /// The outbox has no identity row: `config/postgres/vitrine.sql` of this version was not run.
    case outboxNotInstalled
    /// Postgres answered something the feed cannot read.
    case unexpectedReply(String)
}
