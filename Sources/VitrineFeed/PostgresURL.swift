import PostgresNIO

/// `postgres://user[:password]@host[:port]/database` as a postgres-nio configuration.
public struct PostgresURL: Sendable, Equatable, CustomStringConvertible {
    public var host: String
    public var port: Int
    public var user: String
    public var password: String?
    public var database: String

    public init(parsing text: String) throws {
        let prefixes = ["postgres://", "postgresql://"]
        guard let prefix = prefixes.first(where: { text.hasPrefix($0) }) else {
            throw FeedError.invalidURL("expected postgres://user@host:port/database, got \(text)")
        }
        var rest = Substring(text.dropFirst(prefix.count))
        if let query = rest.firstIndex(of: "?") { rest = rest[..<query] }
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
            guard let port = Int(authority[authority.index(after: colon)...]) else { throw FeedError.invalidURL("bad port in \(text)") }
            self.port = port
        } else {
            host = authority.isEmpty ? "127.0.0.1" : String(authority)
            port = 5432
        }
        self.user = user
        self.password = password
        self.database = path.isEmpty ? user : String(path)
    }

    var configuration: PostgresConnection.Configuration {
        PostgresConnection.Configuration(host: host, port: port, username: user, password: password, database: database, tls: .disable)
    }

    /// The same, for a `PostgresClient` (a pool).
    public var clientConfiguration: PostgresClient.Configuration {
        PostgresClient.Configuration(host: host, port: port, username: user, password: password, database: database, tls: .disable)
    }

    public var description: String { "postgres://\(user)@\(host):\(port)/\(database)" }
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
