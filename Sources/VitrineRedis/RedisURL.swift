/// `redis://[[user]:password@]host[:port][/db]`.
public struct RedisURL: Sendable, Equatable, CustomStringConvertible {
    public var host: String
    public var port: Int
    public var user: String?
    public var password: String?
    public var database: Int

    public init(host: String = "127.0.0.1", port: Int = 6379, user: String? = nil, password: String? = nil, database: Int = 0) {
        self.host = host
        self.port = port
        self.user = user
        self.password = password
        self.database = database
    }

    public init(parsing text: String) throws {
        if text.hasPrefix("rediss://") { throw RedisError.invalidURL("rediss:// (TLS) is not supported yet: \(text)") }
        guard text.hasPrefix("redis://") else { throw RedisError.invalidURL("expected redis://host:port/db, got \(text)") }
        var rest = Substring(text.dropFirst("redis://".count))
        self.init()
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
        if host.isEmpty { host = "127.0.0.1" }
        let databaseText = path.dropFirst()
        if !databaseText.isEmpty {
            guard let database = Int(databaseText), database >= 0 else { throw RedisError.invalidURL("bad database in \(text)") }
            self.database = database
        }
    }

    /// The URL without the password.
    public var description: String {
        "redis://\(password == nil ? "" : "\(user ?? ""):***@")\(host):\(port)/\(database)"
    }
}
