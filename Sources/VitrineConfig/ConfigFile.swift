import VitrineCore

/// The YAML file as written, before addresses and URLs are parsed and `${NAME}`s expanded.
/// Decoded through a `StrictKeysDecoder`: every section rejects keys it does not know, by its
/// `CodingKeys` (which is why each is `CaseIterable`).
struct ConfigFile: Decodable {
    var listen: String?
    var admin: Admin?
    var probes: Probes?
    var tls: TLS?
    var origins: [String: Origin]?
    var routes: [Route]?
    var cache: Cache?
    var limits: Limits?
    var server: Server?
    var timeouts: Timeouts?
    var redis: Redis?
    var postgres: Postgres?
    var listings: Listings?
    var stateDirectory: String?

    enum CodingKeys: String, CodingKey, CaseIterable {
        case listen, admin, probes, tls, origins, routes, cache, limits, server, timeouts, redis, postgres, listings
        case stateDirectory = "state_dir"
    }

    /// `probes: {listen: 0.0.0.0:9145}`.
    struct Probes: Decodable {
        var listen: String

        enum CodingKeys: String, CodingKey, CaseIterable { case listen }
    }


    /// `tls: {listen: 0.0.0.0:8443, certificates: [{certificate: F, key: F, names: [..]}], ...}`.
    struct TLS: Decodable {
        var listen: String
        var certificates: [Certificate]
        var minVersion: String?
        var checkInterval: ConfigDuration?
        var http2: Bool?

        enum CodingKeys: String, CodingKey, CaseIterable {
            case listen, certificates, http2
            case minVersion = "min_version"
            case checkInterval = "check_interval"
        }

        struct Certificate: Decodable {
            var certificate: String
            var key: String
            var names: [String]?

            enum CodingKeys: String, CodingKey, CaseIterable { case certificate, key, names }
        }
    }

    struct Listings: Decodable {
        var concurrency: Int?
        var budget: ByteSize?
        var requireWarm: Bool?
        var debounce: ConfigDuration?
        var pages: [Page]?

        enum CodingKeys: String, CodingKey, CaseIterable {
            case concurrency, budget, debounce, pages
            case requireWarm = "require_warm"
        }


        struct Page: Decodable {
            var name: String?
            var template: String
            var params: [String: Param]?
            var tags: [String]?
            var refresh: ConfigDuration?
            var maxStale: ConfigDuration?

            enum CodingKeys: String, CodingKey, CaseIterable {
                case name, template, params, tags, refresh
                case maxStale = "max_stale"
            }

        }

        struct Param: Decodable {
            var values: [String]?
            var range: [Int]?
            var index: String?
            var field: String?
            var refresh: ConfigDuration?

            enum CodingKeys: String, CodingKey, CaseIterable {
                case values, range, index, field, refresh
            }

        }

        func resolve() throws -> ListingsSettings {
            var settings = ListingsSettings()
            if let concurrency {
                guard concurrency > 0 else { throw ConfigError(key: "listings.concurrency", "must be positive") }
                settings.concurrency = concurrency
            }
            if let budget { settings.budget = budget }
            if let requireWarm { settings.requireWarm = requireWarm }
            if let debounce { settings.debounce = debounce.duration }
            for (index, page) in (pages ?? []).enumerated() {
                let key = "listings.pages[\(index)]"
                guard let template = ListingTemplate(page.template), page.template.hasPrefix("/") else {
                    throw ConfigError(key: "\(key).template", "'\(page.template)' is not a path template like /things/{id}?page={page}")
                }
                let params = page.params ?? [:]
                var parameters: [ListingParameter] = []
                for name in template.parameters {
                    guard let param = params[name] else { throw ConfigError(key: "\(key).params.\(name)", "the template uses {\(name)}: say where its values come from") }
                    parameters.append(ListingParameter(name: name, domain: try param.domain(key: "\(key).params.\(name)")))
                }
                if let unused = params.keys.sorted().first(where: { !template.parameters.contains($0) }) {
                    throw ConfigError(key: "\(key).params.\(unused)", "not in the template")
                }
                var definition = ListingDefinition(name: page.name ?? page.template, template: template, parameters: parameters)
                definition.tags = try (page.tags ?? []).map { text in
                    guard let tag = ListingTemplate(text), tag.parameters.allSatisfy(template.parameters.contains) else {
                        throw ConfigError(key: "\(key).tags", "'\(text)' names a parameter the template does not have")
                    }
                    return tag
                }
                if let refresh = page.refresh { definition.refresh = refresh.duration }
                if let maxStale = page.maxStale { definition.maxStale = maxStale.duration }
                guard definition.refresh > .zero else { throw ConfigError(key: "\(key).refresh", "must be positive") }
                settings.pages.append(definition)
            }
            return settings
        }
    }

    struct Admin: Decodable {
        var listen: String?
        var token: String?
        var allowNonLoopback: Bool?

        enum CodingKeys: String, CodingKey, CaseIterable {
            case listen, token
            case allowNonLoopback = "allow_non_loopback"
        }

    }

    struct Origin: Decodable {
        var url: String
        var connectTimeout: ConfigDuration?
        var firstByteTimeout: ConfigDuration?
        var totalTimeout: ConfigDuration?
        var maxConnections: Int?
        var ca: String?
        var serverName: String?

        enum CodingKeys: String, CodingKey, CaseIterable {
            case url, ca
            case connectTimeout = "connect_timeout"
            case firstByteTimeout = "first_byte_timeout"
            case totalTimeout = "total_timeout"
            case maxConnections = "max_connections"
            case serverName = "server_name"
        }

    }

    struct Route: Decodable {
        var prefix: String
        var origin: String
        var defaultTTL: ConfigDuration?
        var grace: ConfigDuration?
        var cacheable: Bool?
        var negativeTTL: ConfigDuration?
        var keep: ConfigDuration?
        var clientNoCache: String?
        var key: Key?
        var compress: Bool?
        var forwardHeaders: [String]?
        var cookies: Cookies?
        var stripSetCookie: Bool?
        var vary: Vary?

        enum CodingKeys: String, CodingKey, CaseIterable {
            case prefix, origin, grace, cacheable, keep, key, compress, cookies, vary
            case forwardHeaders = "forward_headers"
            case stripSetCookie = "strip_set_cookie"
            case defaultTTL = "default_ttl"
            case negativeTTL = "negative_ttl"
            case clientNoCache = "client_no_cache"
        }

    }

    /// `vary: {max_variants: 32, accept_language: [en, fr, de]}`.
    struct Vary: Decodable {
        var maxVariants: Int?
        var acceptLanguage: [String]?

        enum CodingKeys: String, CodingKey, CaseIterable {
            case maxVariants = "max_variants"
            case acceptLanguage = "accept_language"
        }

    }

    /// `cookies: pass`, `cookies: ignore`, or `cookies: {ignore: [_ga, "_gid", "consent*"]}`.
    struct Cookies: Decodable {
        var policy: CookiePolicy

        enum CodingKeys: String, CodingKey, CaseIterable { case ignore }

        init(from decoder: any Decoder) throws {
            if let text = try? decoder.singleValueContainer().decode(String.self) {
                switch text {
                case "pass": policy = .pass
                case "ignore": policy = .ignoreAll
                default: throw ConfigError(key: keyPath(decoder.codingPath), "'\(text)' is not pass, ignore or {ignore: [names]}")
                }
                return
            }
            let container = try decoder.container(keyedBy: CodingKeys.self)
            let names = try container.decode([String].self, forKey: .ignore)
            for (index, name) in names.enumerated() {
                let bare = name.hasSuffix("*") ? String(name.dropLast()) : name
                guard !bare.isEmpty, FieldSyntax.isToken(bare) else {
                    throw ConfigError(key: keyPath(decoder.codingPath) + ".ignore[\(index)]", "'\(name)' is not a cookie name (or a prefix ending in *)")
                }
            }
            policy = .ignore(names)
        }
    }

    struct Key: Decodable {
        var sortQuery: Bool?
        var dropParams: [String]?
        var includeHost: Bool?

        enum CodingKeys: String, CodingKey, CaseIterable {
            case sortQuery = "sort_query"
            case dropParams = "drop_params"
            case includeHost = "include_host"
        }

    }

    struct Cache: Decodable {
        var memory: ByteSize?
        var shards: Int?
        var maxObjectSize: ByteSize?
        var collapseWait: ConfigDuration?

        enum CodingKeys: String, CodingKey, CaseIterable {
            case memory, shards
            case maxObjectSize = "max_object_size"
            case collapseWait = "collapse_wait"
        }

    }

    struct Limits: Decodable {
        var maxRequestLine: Int?
        var maxHeaderBytes: Int?
        var maxHeaders: Int?
        var maxBody: ByteSize?
        var maxOriginHeaderBytes: Int?
        var maxConnections: Int?
        var maxPendingOutput: ByteSize?
        var maxConcurrentStreams: Int?

        enum CodingKeys: String, CodingKey, CaseIterable {
            case maxConnections = "max_connections"
            case maxConcurrentStreams = "max_concurrent_streams"
            case maxPendingOutput = "max_pending_output"
            case maxRequestLine = "max_request_line"
            case maxHeaderBytes = "max_header_bytes"
            case maxHeaders = "max_headers"
            case maxBody = "max_body"
            case maxOriginHeaderBytes = "max_origin_header_bytes"
        }

    }

    struct Timeouts: Decodable {
        var clientHeader: ConfigDuration?
        var clientBody: ConfigDuration?
        var keepalive: ConfigDuration?
        var send: ConfigDuration?
        var linger: ConfigDuration?

        enum CodingKeys: String, CodingKey, CaseIterable {
            case keepalive, send, linger
            case clientHeader = "client_header"
            case clientBody = "client_body"
        }

    }

    struct Server: Decodable {
        var eventLoops: Int?
        var accessLog: Bool?
        var accessLogFormat: String?
        var accessLogSample: Double?
        var drainDelay: ConfigDuration?
        var drainTimeout: ConfigDuration?
        var trustedProxies: [String]?
        var proxyProtocol: Bool?

        enum CodingKeys: String, CodingKey, CaseIterable {
            case eventLoops = "event_loops"
            case accessLog = "access_log"
            case accessLogFormat = "access_log_format"
            case accessLogSample = "access_log_sample"
            case drainDelay = "drain_delay"
            case drainTimeout = "drain_timeout"
            case trustedProxies = "trusted_proxies"
            case proxyProtocol = "proxy_protocol"
        }

    }

    struct Redis: Decodable {
        var url: String?
        /// A cluster's seed nodes (`host:port`), instead of a `redis-cluster://` URL.
        var cluster: [String]?
        var channel: String?
        var keyPrefix: String?
        var writePurgeTimeout: ConfigDuration?

        enum CodingKeys: String, CodingKey, CaseIterable {
            case url, cluster, channel
            case keyPrefix = "key_prefix"
            case writePurgeTimeout = "write_purge_timeout"
        }

    }

    struct Postgres: Decodable {
        var url: String
        var channel: String?
        var cursorFile: String?

        enum CodingKeys: String, CodingKey, CaseIterable {
            case url, channel
            case cursorFile = "cursor_file"
        }

    }

    // MARK: Resolving

    func resolve(environment: [String: String]) throws -> VitrineConfiguration {
        var configuration = VitrineConfiguration.singleOrigin(OriginURL(parsing: "http://127.0.0.1:80")!)
        if let listen {
            configuration.listen = try Self.address(listen, key: "listen")
        }
        if let admin {
            if let listen = admin.listen { configuration.admin.listen = try Self.address(listen, key: "admin.listen") }
            if let token = admin.token {
                configuration.admin.token = try Self.expand(token, key: "admin.token", environment: environment)
            }
            configuration.admin.allowNonLoopback = admin.allowNonLoopback ?? false
        }
        if let probes {
            configuration.probes = ProbeSettings(listen: try Self.address(probes.listen, key: "probes.listen"))
        }
        if let tls {
            configuration.tls = try Self.tlsSettings(tls, environment: environment)
        }
        guard let origins, !origins.isEmpty else { throw ConfigError(key: "origins", "required: at least one named origin") }
        configuration.origins = [:]
        for (name, origin) in origins {
            let key = "origins.\(name)"
            let text = try Self.expand(origin.url, key: "\(key).url", environment: environment)
            guard let url = OriginURL(parsing: text) else {
                throw ConfigError(key: "\(key).url", "'\(text)' is not an http:// or https://host:port URL")
            }
            var settings = OriginSettings(url: url)
            if origin.ca != nil || origin.serverName != nil {
                guard url.tls else { throw ConfigError(key: "\(key).\(origin.ca != nil ? "ca" : "server_name")", "only for an https:// origin") }
            }
            if let ca = origin.ca {
                settings.caFile = try Self.expand(ca, key: "\(key).ca", environment: environment)
            }
            if let serverName = origin.serverName {
                guard !serverName.isEmpty, !serverName.contains(where: { $0 == " " || $0 == "/" || $0 == ":" }) else {
                    throw ConfigError(key: "\(key).server_name", "'\(serverName)' is not a server name")
                }
                settings.serverName = serverName
            }
            if let value = origin.connectTimeout { settings.connectTimeout = value.duration }
            if let value = origin.firstByteTimeout { settings.firstByteTimeout = value.duration }
            if let value = origin.totalTimeout { settings.totalTimeout = value.duration }
            if let value = origin.maxConnections {
                guard value > 0 else { throw ConfigError(key: "\(key).max_connections", "must be positive") }
                settings.maxConnections = value
            }
            configuration.origins[name] = settings
        }
        guard let routes, !routes.isEmpty else { throw ConfigError(key: "routes", "required: at least one route") }
        configuration.routes = try routes.enumerated().map { index, route in
            var settings = RouteSettings(prefix: route.prefix, origin: route.origin, defaultTTL: route.defaultTTL?.duration)
            settings.grace = route.grace?.duration ?? .zero
            settings.cacheable = route.cacheable ?? true
            if let negativeTTL = route.negativeTTL { settings.negativeTTL = negativeTTL.duration }
            if let keep = route.keep { settings.keep = keep.duration }
            if let text = route.clientNoCache {
                guard let policy = ClientRevalidationPolicy(rawValue: text) else {
                    let choices = ClientRevalidationPolicy.allCases.map(\.rawValue).joined(separator: ", ")
                    throw ConfigError(key: "routes[\(index)].client_no_cache", "'\(text)' is not one of \(choices)")
                }
                settings.clientNoCache = policy
            }
            if let compress = route.compress { settings.compress = compress }
            if let key = route.key {
                if let sort = key.sortQuery { settings.key.sortQuery = sort }
                if let drop = key.dropParams { settings.key.dropParameters = drop }
                if let host = key.includeHost { settings.key.includeHost = host }
            }
            if let fields = route.forwardHeaders {
                for (fieldIndex, field) in fields.enumerated() {
                    let lower = field.lowercased()
                    guard FieldSyntax.isToken(lower) else {
                        throw ConfigError(key: "routes[\(index)].forward_headers[\(fieldIndex)]", "'\(field)' is not a header field name")
                    }
                    guard !RouteSettings.neverForwarded.contains(lower) else {
                        throw ConfigError(
                            key: "routes[\(index)].forward_headers[\(fieldIndex)]",
                            "'\(field)' is set by the proxy itself (framing, Host, validators, Accept-Encoding) and cannot be forwarded as sent")
                    }
                }
                settings.forwardHeaders = fields.map { $0.lowercased() }
            }
            if let vary = route.vary {
                if let value = vary.maxVariants {
                    guard (1...1024).contains(value) else { throw ConfigError(key: "routes[\(index)].vary.max_variants", "must be 1 to 1024") }
                    settings.vary.maxVariants = value
                }
                if let languages = vary.acceptLanguage {
                    for (languageIndex, language) in languages.enumerated() {
                        guard !language.isEmpty, language.utf8.count <= 35,
                            language.utf8.allSatisfy({ FieldSyntax.isTokenByte($0) && $0 != UInt8(ascii: "*") })
                        else {
                            throw ConfigError(key: "routes[\(index)].vary.accept_language[\(languageIndex)]", "'\(language)' is not a language tag")
                        }
                    }
                    guard !languages.isEmpty else { throw ConfigError(key: "routes[\(index)].vary.accept_language", "name at least one language") }
                    settings.vary.languages = languages
                }
            }
            if let cookies = route.cookies { settings.cookies = cookies.policy }
            if let strip = route.stripSetCookie { settings.stripSetCookie = strip }
            return settings
        }
        if let cache {
            if let memory = cache.memory { configuration.cache.memory = memory }
            if let shards = cache.shards { configuration.cache.shards = shards }
            if let size = cache.maxObjectSize { configuration.cache.maxObjectSize = size }
            if let wait = cache.collapseWait { configuration.cache.collapseWait = wait.duration }
        }
        if let limits {
            if let value = limits.maxRequestLine { configuration.limits.maxRequestLine = try Self.positive(value, "limits.max_request_line") }
            if let value = limits.maxHeaderBytes { configuration.limits.maxHeaderBytes = try Self.positive(value, "limits.max_header_bytes") }
            if let value = limits.maxHeaders { configuration.limits.maxHeaders = try Self.positive(value, "limits.max_headers") }
            if let value = limits.maxBody { configuration.limits.maxBody = value }
            if let value = limits.maxConnections { configuration.limits.maxConnections = try Self.positive(value, "limits.max_connections") }
            if let value = limits.maxConcurrentStreams {
                guard value > 0 && value <= 10_000 else { throw ConfigError(key: "limits.max_concurrent_streams", "must be 1...10000") }
                configuration.limits.maxConcurrentStreams = value
            }
            if let value = limits.maxPendingOutput {
                guard value.bytes >= 16 << 10 else { throw ConfigError(key: "limits.max_pending_output", "must be at least 16KiB") }
                configuration.limits.maxPendingOutput = value
            }
            if let value = limits.maxOriginHeaderBytes {
                configuration.limits.maxOriginHeaderBytes = try Self.positive(value, "limits.max_origin_header_bytes")
            }
        }
        if let timeouts {
            func positive(_ value: ConfigDuration?, _ name: String) throws -> Duration? {
                guard let value else { return nil }
                guard value.duration > .zero else { throw ConfigError(key: "timeouts.\(name)", "must be positive") }
                return value.duration
            }
            if let value = try positive(timeouts.clientHeader, "client_header") { configuration.timeouts.clientHeader = value }
            if let value = try positive(timeouts.clientBody, "client_body") { configuration.timeouts.clientBody = value }
            if let value = try positive(timeouts.keepalive, "keepalive") { configuration.timeouts.keepalive = value }
            if let value = try positive(timeouts.send, "send") { configuration.timeouts.send = value }
            if let value = timeouts.linger { configuration.timeouts.linger = value.duration }
        }
        if let server {
            if let loops = server.eventLoops {
                guard loops >= 0 else { throw ConfigError(key: "server.event_loops", "must be 0 (one per core) or more") }
                configuration.server.eventLoops = loops
            }
            configuration.server.accessLog = server.accessLog ?? false
            if let format = server.accessLogFormat {
                guard let parsed = AccessLogFormat(rawValue: format) else {
                    throw ConfigError(
                        key: "server.access_log_format",
                        "'\(format)' is not one of \(AccessLogFormat.allCases.map(\.rawValue).joined(separator: ", "))")
                }
                configuration.server.accessLogFormat = parsed
            }
            if let sample = server.accessLogSample { configuration.server.accessLogSample = sample }
            if let delay = server.drainDelay { configuration.server.drainDelay = delay.duration }
            if let timeout = server.drainTimeout { configuration.server.drainTimeout = timeout.duration }
            if let proxies = server.trustedProxies {
                configuration.server.trustedProxies = try proxies.enumerated().map { index, text in
                    guard let block = CIDRBlock(parsing: text) else {
                        throw ConfigError(key: "server.trusted_proxies[\(index)]", "'\(text)' is not an address or CIDR block")
                    }
                    return block
                }
            }
            configuration.server.proxyProtocol = server.proxyProtocol ?? false
        }
        if let redis {
            let url: String
            switch (redis.url, redis.cluster) {
            case (let text?, nil):
                url = try Self.expand(text, key: "redis.url", environment: environment)
                guard ["redis://", "rediss://", "redis-cluster://", "rediss-cluster://"].contains(where: { url.hasPrefix($0) }) else {
                    throw ConfigError(key: "redis.url", "'\(url)' is not a redis://, rediss:// or redis-cluster:// URL")
                }
            case (nil, let seeds?):
                let expanded = try seeds.enumerated().map { index, seed in
                    try Self.expand(seed, key: "redis.cluster[\(index)]", environment: environment)
                }
                guard !expanded.isEmpty, expanded.allSatisfy({ ListenAddress(parsing: $0) != nil }) else {
                    throw ConfigError(key: "redis.cluster", "must list the seed nodes as host:port")
                }
                url = "redis-cluster://" + expanded.joined(separator: ",")
            case (nil, nil):
                throw ConfigError(key: "redis.url", "set redis.url, or redis.cluster with the seed nodes")
            case (_?, _?):
                throw ConfigError(key: "redis.cluster", "set redis.url or redis.cluster, not both")
            }
            var settings = RedisSettings(url: url)
            if let channel = redis.channel { settings.channel = channel }
            if let prefix = redis.keyPrefix { settings.keyPrefix = prefix }
            if let timeout = redis.writePurgeTimeout { settings.writePurgeTimeout = timeout.duration }
            configuration.redis = settings
        }
        if let postgres {
            let url = try Self.expand(postgres.url, key: "postgres.url", environment: environment)
            guard url.hasPrefix("postgres://") || url.hasPrefix("postgresql://") else {
                throw ConfigError(key: "postgres.url", "'\(url)' is not a postgres:// URL")
            }
            var settings = PostgresSettings(url: url)
            if let channel = postgres.channel { settings.channel = channel }
            if let file = postgres.cursorFile { settings.cursorFile = file }
            configuration.postgres = settings
        }
        if let listings { configuration.listings = try listings.resolve() }
        if let stateDirectory {
            let directory = try Self.expand(stateDirectory, key: "state_dir", environment: environment)
            guard !directory.isEmpty else { throw ConfigError(key: "state_dir", "must name a directory") }
            configuration.stateDirectory = directory
        }
        return configuration
    }

    private static func tlsSettings(_ tls: TLS, environment: [String: String]) throws -> TLSSettings {
        guard !tls.certificates.isEmpty else { throw ConfigError(key: "tls.certificates", "at least one certificate is needed") }
        var certificates: [CertificateFiles] = []
        for (index, certificate) in tls.certificates.enumerated() {
            let key = "tls.certificates[\(index)]"
            let certificatePath = try expand(certificate.certificate, key: "\(key).certificate", environment: environment)
            let keyPath = try expand(certificate.key, key: "\(key).key", environment: environment)
            guard !certificatePath.isEmpty else { throw ConfigError(key: "\(key).certificate", "a file is needed") }
            guard !keyPath.isEmpty else { throw ConfigError(key: "\(key).key", "a file is needed") }
            if let names = certificate.names {
                for name in names where name.isEmpty || name.contains(where: { $0 == " " || $0 == "/" || $0 == ":" }) {
                    throw ConfigError(key: "\(key).names", "'\(name)' is not a server name")
                }
            }
            certificates.append(CertificateFiles(certificate: certificatePath, key: keyPath, names: certificate.names))
        }
        var settings = TLSSettings(listen: try address(tls.listen, key: "tls.listen"), certificates: certificates)
        if let version = tls.minVersion {
            guard let minimum = TLSMinimumVersion(rawValue: version) else {
                throw ConfigError(key: "tls.min_version", "'\(version)' is not one of \(TLSMinimumVersion.allCases.map(\.rawValue).joined(separator: ", "))")
            }
            settings.minimumVersion = minimum
        }
        if let interval = tls.checkInterval { settings.checkInterval = interval.duration }
        if let http2 = tls.http2 { settings.http2 = http2 }
        return settings
    }

    private static func address(_ text: String, key: String) throws -> ListenAddress {
        guard let address = ListenAddress(parsing: text) else {
            throw ConfigError(key: key, "'\(text)' is not a host:port address")
        }
        return address
    }

    private static func positive(_ value: Int, _ key: String) throws -> Int {
        guard value > 0 else { throw ConfigError(key: key, "must be positive") }
        return value
    }

    /// Replaces each `${NAME}` with the environment variable's value.
    static func expand(_ text: String, key: String, environment: [String: String]) throws -> String {
        var result = ""
        var rest = text[...]
        while let start = rest.range(of: "${") {
            result += rest[..<start.lowerBound]
            guard let end = rest[start.upperBound...].firstIndex(of: "}") else {
                throw ConfigError(key: key, "unterminated ${...}")
            }
            let name = String(rest[start.upperBound..<end])
            guard let value = environment[name] else {
                throw ConfigError(key: key, "environment variable \(name) is not set")
            }
            result += value
            rest = rest[rest.index(after: end)...]
        }
        result += rest
        return result
    }
}

extension ConfigFile.Listings.Param {
    func domain(key: String) throws -> ListingParameter.Domain {
        switch (values, range, index) {
        case (let values?, nil, nil):
            guard !values.isEmpty else { throw ConfigError(key: "\(key).values", "must not be empty") }
            return .values(values)
        case (nil, let range?, nil):
            guard range.count == 2, range[0] <= range[1] else { throw ConfigError(key: "\(key).range", "must be [first, last]") }
            return .range(range[0], range[1])
        case (nil, nil, let index?):
            guard index.hasPrefix("/") else { throw ConfigError(key: "\(key).index", "must be a path on the origin") }
            return .index(path: index, field: field, refresh: refresh?.duration ?? .seconds(300))
        default:
            throw ConfigError(key: key, "give exactly one of values, range or index")
        }
    }
}
