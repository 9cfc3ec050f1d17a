/// `redis://[[user]:password@]host[:port][/db]`, or `rediss://…` for TLS, optionally with
/// `?ssl_ca_certs=/path/ca.pem` (as redis-py spells it) to trust that CA instead of the system's.
public struct RedisURL: Sendable, Equatable, CustomStringConvertible {
    public var host: String
    public var port: Int
    public var user: String?
    public var password: String?
    public var database: Int
    /// `rediss://`: the connection is TLS, and the server's certificate is verified.
    public var tls: Bool
    /// PEM file of the CAs trusted for the server's certificate; nil for the system's roots.
    public var caCertificatesFile: String?

    public init(
        host: String = "127.0.0.1", port: Int = 6379, user: String? = nil, password: String? = nil, database: Int = 0,
        tls: Bool = false, caCertificatesFile: String? = nil
    ) {
        self.host = host
        self.port = port
        self.user = user
        self.password = password
        self.database = database
        self.tls = tls
        self.caCertificatesFile = caCertificatesFile
    }

    public init(parsing text: String) throws {
        self.init()
        var rest: Substring
        if text.hasPrefix("rediss://") {
            tls = true
            rest = Substring(text.dropFirst("rediss://".count))
        } else if text.hasPrefix("redis://") {
            rest = Substring(text.dropFirst("redis://".count))
        } else {
            throw RedisError.invalidURL("expected redis://host:port/db or rediss://…, got \(text)")
        }
        if let question = rest.firstIndex(of: "?") {
            for parameter in rest[rest.index(after: question)...].split(separator: "&") {
                let parts = parameter.split(separator: "=", maxSplits: 1)
                guard parts.count == 2, parts[0] == "ssl_ca_certs", tls, !parts[1].isEmpty else {
                    throw RedisError.invalidURL("unknown parameter '\(parameter)' (only ssl_ca_certs=FILE, with rediss://) in \(text)")
                }
                caCertificatesFile = String(parts[1])
            }
            rest = rest[..<question]
        }
        if let at = rest.lastIndex(of: "@") {
            let credentials = rest[..<at]
            rest = rest[rest.index(after: at)...]
            if let colon = credentials.firstIndex(of: ":") {
                let name = credentials[..<colon]
                user = name.isEmpty ? nil : String(name)
                password = String(credentials[credentials.index(after: colon)...])
            } else {
                password = String(credentials)
            }
        }
        let authority = rest.prefix { $0 != "/" }
        let path = rest.dropFirst(authority.count)
        if let colon = authority.lastIndex(of: ":") {
            host = String(authority[..<colon])
            guard let port = Int(authority[authority.index(after: colon)...]), (1...65535).contains(port) else {
                throw RedisError.invalidURL("bad port in \(text)")
            }
            self.port = port
        } else if !authority.isEmpty {
            host = String(authority)
        }
        // An IPv6 literal is written in brackets; the address is what is inside them.
        if host.hasPrefix("["), host.hasSuffix("]") { host = String(host.dropFirst().dropLast()) }
        if host.isEmpty { host = "127.0.0.1" }
        let databaseText = path.dropFirst()
        if !databaseText.isEmpty {
            guard let database = Int(databaseText), database >= 0 else { throw RedisError.invalidURL("bad database in \(text)") }
            self.database = database
        }
    }

    /// The URL without the password.
    public var description: String {
        let query = caCertificatesFile.map { "?ssl_ca_certs=\($0)" } ?? ""
        return "\(tls ? "rediss" : "redis")://\(password == nil ? "" : "\(user ?? ""):***@")\(host.contains(":") ? "[\(host)]" : host):\(port)/\(database)\(query)"
    }
}
