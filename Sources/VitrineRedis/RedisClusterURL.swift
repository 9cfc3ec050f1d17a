/// `redis-cluster://[[user]:password@]host:port[,host:port...]`, or `rediss-cluster://…` for
/// TLS (with `?ssl_ca_certs=FILE` as for a single Redis): the seed nodes a cluster client learns
/// the map from, and the credentials and TLS every node is reached with. A cluster has only
/// database 0.
public struct RedisClusterURL: Sendable, Equatable, CustomStringConvertible {
    /// Credentials and TLS for every node; its host and port are those of the first seed.
    public var template: RedisURL
    public var seeds: [RedisClusterTopology.Endpoint]

    public init(template: RedisURL, seeds: [RedisClusterTopology.Endpoint]) {
        self.template = template
        self.seeds = seeds
    }

    /// Whether `text` names a cluster (rather than one Redis).
    public static func isCluster(_ text: String) -> Bool {
        text.hasPrefix("redis-cluster://") || text.hasPrefix("rediss-cluster://")
    }

    public init(parsing text: String) throws {
        let single: String
        if text.hasPrefix("rediss-cluster://") {
            single = "rediss://" + text.dropFirst("rediss-cluster://".count)
        } else if text.hasPrefix("redis-cluster://") {
            single = "redis://" + text.dropFirst("redis-cluster://".count)
        } else {
            throw RedisError.invalidURL("expected redis-cluster://host:port,host:port or rediss-cluster://…, got \(text)")
        }
        // The seeds are the authority's comma-separated list; the rest parses as a single URL.
        var rest = Substring(single.dropFirst(single.hasPrefix("rediss://") ? "rediss://".count : "redis://".count))
        let scheme = single.hasPrefix("rediss://") ? "rediss://" : "redis://"
        var credentials = ""
        if let at = rest.prefix(while: { $0 != "/" && $0 != "?" }).lastIndex(of: "@") {
            credentials = String(rest[...at])
            rest = rest[rest.index(after: at)...]
        }
        let authority = rest.prefix { $0 != "/" && $0 != "?" }
        let tail = rest.dropFirst(authority.count)
        var seeds: [RedisClusterTopology.Endpoint] = []
        var template: RedisURL?
        for (index, hostPort) in authority.split(separator: ",", omittingEmptySubsequences: false).enumerated() {
            guard !hostPort.isEmpty else { throw RedisError.invalidURL("an empty seed in \(text)") }
            let url = try RedisURL(parsing: scheme + credentials + hostPort + tail)
            guard url.database == 0 else { throw RedisError.invalidURL("a cluster has only database 0: \(text)") }
            if index == 0 { template = url }
            seeds.append(RedisClusterTopology.Endpoint(host: url.host, port: url.port))
        }
        guard let template, !seeds.isEmpty else { throw RedisError.invalidURL("no seed node in \(text)") }
        self.init(template: template, seeds: seeds)
    }

    /// The URL without the password.
    public var description: String {
        let query = template.caCertificatesFile.map { "?ssl_ca_certs=\($0)" } ?? ""
        let credentials = template.password == nil ? "" : "\(template.user ?? ""):***@"
        return "\(template.tls ? "rediss" : "redis")-cluster://\(credentials)\(seeds.map(\.description).joined(separator: ","))\(query)"
    }
}
