import Foundation
import VitrineCore
import Yams

/// Everything `vitrine serve` is configured with, as read from YAML (see `config/*.yaml`).
public struct VitrineConfiguration: Sendable, Equatable {
    public var listen: ListenAddress
    public var admin: AdminSettings
    /// Where health, readiness and metrics are served without a token (for a kubelet, a load
    /// balancer's health check, a Prometheus scrape); nil: only on the admin listener, with it.
    public var probes: ProbeSettings?
    /// A TLS listener beside the cleartext one (`listen`); nil: none.
    public var tls: TLSSettings?
    public var origins: [String: OriginSettings]
    public var routes: [RouteSettings]
    public var cache: CacheSettings
    public var limits: LimitSettings
    public var server: ServerSettings
    public var timeouts = TimeoutSettings()
    public var redis: RedisSettings?
    public var postgres: PostgresSettings?
    public var listings = ListingsSettings()
    /// Where the node keeps what must survive a restart (the change feed's cursor, when Redis
    /// does not hold it). Created if missing.
    public var stateDirectory = "/var/lib/vitrine"

    /// A configuration with one route sending everything to `origin` (as `varnishd -b` does).
    public static func singleOrigin(_ origin: OriginURL, defaultTTL: Duration? = nil) -> VitrineConfiguration {
        VitrineConfiguration(
            listen: ListenAddress(host: "127.0.0.1", port: 8080),
            admin: AdminSettings(),
            origins: ["default": OriginSettings(url: origin)],
            routes: [RouteSettings(prefix: "/", origin: "default", defaultTTL: defaultTTL)],
            cache: CacheSettings(),
            limits: LimitSettings(),
            server: ServerSettings(),
            redis: nil,
            postgres: nil
        )
    }

    public init(
        listen: ListenAddress, admin: AdminSettings, origins: [String: OriginSettings], routes: [RouteSettings],
        cache: CacheSettings, limits: LimitSettings, server: ServerSettings, redis: RedisSettings?,
        postgres: PostgresSettings?
    ) {
        self.listen = listen
        self.admin = admin
        self.origins = origins
        self.routes = routes
        self.cache = cache
        self.limits = limits
        self.server = server
        self.redis = redis
        self.postgres = postgres
    }

    /// Reads and validates a YAML file; `${NAME}` in secrets and URLs is taken from `environment`.
    public static func load(
        path: String,
        environment: [String: String] = ProcessInfo.processInfo.environment
    ) throws -> VitrineConfiguration {
        let text: String
        do {
            text = try String(contentsOfFile: path, encoding: .utf8)
        } catch {
            throw ConfigError(key: "(file)", "cannot read \(path): \(error.localizedDescription)")
        }
        return try parse(yaml: text, environment: environment)
    }

    /// Parses and validates YAML text.
    public static func parse(yaml: String, environment: [String: String] = [:]) throws -> VitrineConfiguration {
        let file: ConfigFile
        do {
            file = try YAMLDecoder().decode(StrictlyDecoded<ConfigFile>.self, from: yaml, userInfo: [.environment: environment]).value
        } catch let error as ConfigError {
            throw error
        } catch let error as DecodingError {
            // Yams wraps errors thrown while decoding (ours among them) as "not valid YAML".
            if case .dataCorrupted(let context) = error, let inner = context.underlyingError as? ConfigError {
                throw inner
            }
            throw ConfigError(decoding: error)
        } catch {
            throw ConfigError(key: "(file)", "not valid YAML: \(error)")
        }
        let configuration = try file.resolve(environment: environment)
        try configuration.validate()
        return configuration
    }

    /// Checks what each section cannot check alone: routes name known origins, and the admin
    /// listener is on loopback unless explicitly allowed.
    public func validate() throws {
        guard !origins.isEmpty else { throw ConfigError(key: "origins", "at least one origin is needed") }
        guard !routes.isEmpty else { throw ConfigError(key: "routes", "at least one route is needed") }
        for (index, route) in routes.enumerated() {
            guard origins[route.origin] != nil else {
                throw ConfigError(
                    key: "routes[\(index)].origin",
                    "unknown origin '\(route.origin)' (defined: \(origins.keys.sorted().joined(separator: ", ")))"
                )
            }
            guard route.prefix.hasPrefix("/") else {
                throw ConfigError(key: "routes[\(index)].prefix", "must start with '/'")
            }
        }
        if !admin.listen.isLoopback && !admin.allowNonLoopback {
            throw ConfigError(
                key: "admin.listen",
                "\(admin.listen) is not a loopback address; set admin.allow_non_loopback: true to expose the admin API"
            )
        }
        if let tls {
            // Port 0 (any free port, as tests bind) never clashes.
            for (name, other) in [("listen", listen), ("admin.listen", admin.listen), ("probes.listen", probes?.listen)]
            where other == tls.listen && tls.listen.port != 0 {
                throw ConfigError(key: "tls.listen", "\(tls.listen) is also \(name)")
            }
        }
        if let token = admin.token, token.utf8.count < 16 {
            throw ConfigError(key: "admin.token", "too short: use at least 16 characters")
        }
        guard cache.shards > 0 && cache.shards <= 4096 else { throw ConfigError(key: "cache.shards", "must be 1...4096") }
        guard cache.memory.bytes >= 1 << 20 else { throw ConfigError(key: "cache.memory", "must be at least 1MiB") }
        guard server.accessLogSample >= 0 && server.accessLogSample <= 1 else {
            throw ConfigError(key: "server.access_log_sample", "must be between 0 and 1")
        }
        try redis?.validate()
    }
}

/// The admin API's listener and credentials.
public struct AdminSettings: Sendable, Equatable {
    public var listen = ListenAddress(host: "127.0.0.1", port: 8081)
    /// The bearer token; nil until given by the file, `VITRINE_ADMIN_TOKEN` or `--admin-token`.
    public var token: String?
    public var allowNonLoopback = false
    public init() {}
}

/// The probe listener: `GET /healthz`, `/readyz` and `/metrics` only, no token.
public struct ProbeSettings: Sendable, Equatable {
    public var listen: ListenAddress
    public init(listen: ListenAddress) { self.listen = listen }
}

/// A named origin server.
public struct OriginSettings: Sendable, Equatable {
    public var url: OriginURL
    public var connectTimeout: Duration = .seconds(1)
    public var firstByteTimeout: Duration = .seconds(15)
    public var totalTimeout: Duration = .seconds(60)
    /// Open connections per event loop.
    public var maxConnections = 256
    /// For an `https://` origin: the CA certificates (PEM) its certificate is verified against;
    /// nil: the system's roots.
    public var caFile: String?
    /// For an `https://` origin: the name sent in SNI and checked in its certificate; nil: the
    /// URL's host.
    public var serverName: String?
    public init(url: OriginURL) { self.url = url }
}

/// How responses that vary on request fields are kept (RFC 9111 §4.1).
public struct VarySettings: Sendable, Equatable {
    /// Variants of one URL kept at once; a response that would make one more is served, not
    /// stored. Bounds what `Vary: User-Agent` (or `Cookie`) can do to the cache.
    public var maxVariants = 32
    /// The languages the store sells: `Accept-Language` is reduced to one of them, both in the
    /// key and in what the origin is sent (nil: left as sent).
    public var languages: [String]?

    public init() {}
}

/// A path prefix and what to do with requests under it.
public struct RouteSettings: Sendable, Equatable {
    public var prefix: String
    public var origin: String
    /// TTL for responses that carry no explicit freshness; nil: such responses are not stored.
    public var defaultTTL: Duration?
    /// Kept past expiry for stale serving.
    public var grace: Duration = .zero
    /// False: every request is passed to the origin, nothing stored.
    public var cacheable = true
    /// The longest a 404 or 410 is cached.
    public var negativeTTL: Duration = .seconds(10)
    /// How long past expiry a response with validators is kept, to be revalidated instead of refetched.
    public var keep: Duration = .seconds(600)
    /// What a client's `Cache-Control: no-cache` (or `max-age=0`) does on this route.
    public var clientNoCache: ClientRevalidationPolicy = .ignore
    /// How request targets become cache keys.
    public var key = CacheKeyNormalizer()
    /// Keep a gzip copy of compressible responses for clients that accept gzip.
    public var compress = true
    /// Request fields (lower-cased) sent to the origin on fetches whose answer may be stored,
    /// besides those the proxy sets itself. Nothing else a client sends reaches the origin on
    /// those fetches: an input the key does not describe cannot change what everyone is served.
    /// Passed requests and writes forward every end-to-end field.
    public var forwardHeaders = RouteSettings.defaultForwardHeaders
    /// Which request cookies matter: any (`pass`, the default), none, or all but those listed.
    public var cookies = CookiePolicy.pass
    /// Remove `Set-Cookie` from the answers to fetches whose answer may be stored, so that they
    /// can be (nobody is then sent a cookie from this route's cacheable answers).
    public var stripSetCookie = false
    /// What a response's `Vary` may make of one URL.
    public var vary = VarySettings()

    /// Analytics and consent cookies that never change a catalog answer (Google Analytics and
    /// Ads, Meta, Hotjar, OneTrust, Cookiebot, cookieconsent, IAB TCF): the demo ignores them.
    public static let analyticsCookies = [
        "_ga*", "_gid", "_gcl*", "_fbp", "_fbc", "_hj*", "OptanonConsent", "OptanonAlertBoxClosed", "CookieConsent",
        "cookieconsent_status", "euconsent-v2",
    ]

    /// The default `forward_headers`: content negotiation and tracing. A response that depends
    /// on one of them says so with `Vary`, which puts it in the key.
    public static let defaultForwardHeaders = ["accept", "accept-language", "user-agent", "traceparent", "tracestate"]

    /// Fields the proxy writes itself on every forwarded request; `forward_headers` cannot name them.
    public static let neverForwarded: Set<String> = [
        "host", "content-length", "transfer-encoding", "connection", "accept-encoding", "if-none-match", "if-modified-since",
        "x-forwarded-for", "x-forwarded-host", "x-forwarded-proto", "te", "trailer", "upgrade", "keep-alive",
        "proxy-connection", "proxy-authorization", "authorization", "cookie", "range", "if-range", "if-match", "if-unmodified-since",
        "expect",
    ]

    public init(prefix: String, origin: String, defaultTTL: Duration? = nil, cacheable: Bool = true) {
        self.prefix = prefix
        self.origin = origin
        self.defaultTTL = defaultTTL
        self.cacheable = cacheable
    }
}

/// The L1 store.
public struct CacheSettings: Sendable, Equatable {
    public var memory = ByteSize(256 << 20)
    public var shards = 64
    /// Larger responses are passed through, not stored.
    public var maxObjectSize = ByteSize(8 << 20)
    /// How long a request waits for a collapsed fetch of the same URL before fetching on its own.
    public var collapseWait: Duration = .seconds(5)
    public init() {}
}

/// Request limits; exceeding one gets a 4xx and a closed connection.
public struct LimitSettings: Sendable, Equatable {
    public var maxRequestLine = 8192
    public var maxHeaderBytes = 32768
    public var maxHeaders = 100
    public var maxBody = ByteSize(10 << 20)
    /// Origin response header limit (tag headers of category pages can be long).
    public var maxOriginHeaderBytes = 256 << 10
    /// Open client connections per listener; past it new ones are closed at once.
    public var maxConnections = 10_000
    /// Bytes queued for a client socket that has not taken them, past which the connection stops
    /// reading further requests (hits and misses alike) until the client reads.
    public var maxPendingOutput = ByteSize(1 << 20)
    /// HTTP/2: streams a client may have open at once on one connection (SETTINGS
    /// `MAX_CONCURRENT_STREAMS`); each is a request with the limits above.
    public var maxConcurrentStreams = 128
    public init() {}
}

/// Client connection timeouts, in the spirit of nginx's and Varnish's: a client that holds a
/// connection without making progress is closed.
public struct TimeoutSettings: Sendable, Equatable {
    /// From a connection's first byte of a request (or its opening) to the end of that head.
    public var clientHeader: Duration = .seconds(10)
    /// The longest wait for the next bytes of a request body.
    public var clientBody: Duration = .seconds(10)
    /// How long an idle keep-alive connection is kept open between requests.
    public var keepalive: Duration = .seconds(60)
    /// The longest a response waits for the client to take more bytes.
    public var send: Duration = .seconds(30)
    /// After an error answer, what the client still sends is read and dropped until it has been
    /// quiet this long (30 s at most), so that the answer is not lost to a reset.
    public var linger: Duration = .seconds(2)
    public init() {}
}

/// Process-level settings.
public struct ServerSettings: Sendable, Equatable {
    /// Event loop threads; 0 means one per core the process may use.
    public var eventLoops = 0
    /// Write one line per answered request to standard output.
    public var accessLog = false
    /// The access log's line format.
    public var accessLogFormat = AccessLogFormat.json
    /// The fraction of requests logged (1: all), for peak traffic. Errors (5xx) are always logged.
    public var accessLogSample = 1.0
    /// After `SIGTERM`: how long `/readyz` says 503 while the listeners still accept, so that a
    /// load balancer stops sending before they close.
    public var drainDelay: Duration = .seconds(5)
    /// After the listeners close: how long in-flight requests and streamed answers may take to
    /// finish before the connections are cut.
    public var drainTimeout: Duration = .seconds(30)
    /// Peers whose `X-Forwarded-For` and `X-Forwarded-Proto` are believed (and, with the PROXY
    /// protocol, the load balancer's own address). Everyone else's are dropped.
    public var trustedProxies: [CIDRBlock] = []
    /// The proxy listener expects a PROXY protocol (v1 or v2) header on every connection.
    public var proxyProtocol = false
    public init() {}
}

/// How the access log writes a line.
public enum AccessLogFormat: String, Sendable, Equatable, CaseIterable {
    /// One JSON object per line.
    case json
    /// nginx's `combined` format, with the cache result, duration and request id after it.
    case combined
}

/// The shared Redis tier.
public struct RedisSettings: Sendable, Equatable {
    public var url: String
    /// The pub/sub channel purges are fanned out on (nodes of one fleet share it).
    public var channel = "vitrine:purges"
    /// What every key the tier writes begins with: fleets (or tests) sharing one Redis or
    /// cluster keep apart by it.
    public var keyPrefix = "vt"
    /// How long a write's answer waits for its purge to reach Redis (and so every node) before
    /// it leaves anyway, saying so in `Vitrine-Purge`.
    public var writePurgeTimeout: Duration = .milliseconds(500)
    public init(url: String) { self.url = url }

    /// Whether the URL names a cluster (`redis-cluster://`, `rediss-cluster://`).
    public var isCluster: Bool { url.hasPrefix("redis-cluster://") || url.hasPrefix("rediss-cluster://") }

    /// The channel and key prefix name hash slots on a cluster: braces in them would pick another
    /// slot than the tier's layout counts on.
    func validate() throws {
        for (key, value) in [("redis.channel", channel), ("redis.key_prefix", keyPrefix)] {
            guard !value.isEmpty, !value.contains("{"), !value.contains("}"), !value.contains(where: \.isWhitespace) else {
                throw ConfigError(key: key, "'\(value)' must be non-empty, without braces or spaces")
            }
        }
        guard !keyPrefix.contains(where: { "*?[]\\".contains($0) }) else {
            throw ConfigError(key: "redis.key_prefix", "'\(keyPrefix)' must not hold a glob character (* ? [ ] \\)")
        }
    }
}

/// The Postgres change feed.
public struct PostgresSettings: Sendable, Equatable {
    public var url: String
    public var channel = "vitrine_invalidations"
    /// Where the feed's cursor is kept across restarts when Redis is not configured; nil:
    /// `feed-CHANNEL.cursor` in the state directory.
    public var cursorFile: String?
    public init(url: String) { self.url = url }

    /// The cursor file, given the node's state directory.
    public func cursorPath(stateDirectory: String) -> String {
        cursorFile ?? (stateDirectory as NSString).appendingPathComponent("feed-\(channel).cursor")
    }
}

extension CodingUserInfoKey {
    static let environment = CodingUserInfoKey(rawValue: "vitrine.environment")!
}

extension ConfigError {
    init(decoding error: DecodingError) {
        switch error {
        case .keyNotFound(let key, let context):
            self.init(key: keyPath(context.codingPath + [key]), "required but missing")
        case .typeMismatch(let type, let context):
            self.init(key: keyPath(context.codingPath), "expected \(Self.describe(type))")
        case .valueNotFound(let type, let context):
            self.init(key: keyPath(context.codingPath), "expected \(Self.describe(type)), found nothing")
        case .dataCorrupted(let context):
            self.init(key: keyPath(context.codingPath), context.debugDescription)
        @unknown default:
            self.init(key: "(file)", "\(error)")
        }
    }

    private static func describe(_ type: Any.Type) -> String {
        switch type {
        case is String.Type: return "a string"
        case is Int.Type: return "an integer"
        case is Bool.Type: return "true or false"
        case is Double.Type: return "a number"
        default:
            let name = String(describing: type)
            if name.hasPrefix("Array") { return "a list" }
            if name.hasPrefix("Dictionary") { return "a mapping" }
            return "a value of another shape (\(name))"
        }
    }
}
