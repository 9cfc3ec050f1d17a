import Foundation
import Testing
@testable import VitrineConfig

@Suite struct ConfigurationTests {
    static let valid = """
        listen: 127.0.0.1:8080
        admin:
          listen: 127.0.0.1:8081
          token: ${VITRINE_ADMIN_TOKEN}
        origins:
          catalog:
            url: http://127.0.0.1:9000
            connect_timeout: 500ms
            first_byte_timeout: 5s
            total_timeout: 1m
            max_connections: 64
          search:
            url: http://127.0.0.1:9001/api
        routes:
          - prefix: /catalog/
            origin: catalog
            default_ttl: 60s
          - prefix: /search/
            origin: search
            default_ttl: 30
            grace: 10s
            negative_ttl: 5s
            keep: 1h
            client_no_cache: revalidate
          - prefix: /cart/
            origin: catalog
            cacheable: false
        cache:
          memory: 512MiB
          shards: 32
          max_object_size: 4MB
        limits:
          max_body: 1MiB
          max_headers: 64
        """

    @Test func readsEveryKey() throws {
        let configuration = try VitrineConfiguration.parse(
            yaml: Self.valid, environment: ["VITRINE_ADMIN_TOKEN": "0123456789abcdef0123"])
        #expect(configuration.listen == ListenAddress(host: "127.0.0.1", port: 8080))
        #expect(configuration.admin.token == "0123456789abcdef0123")
        #expect(configuration.origins["catalog"]?.connectTimeout == .milliseconds(500))
        #expect(configuration.origins["catalog"]?.totalTimeout == .seconds(60))
        #expect(configuration.origins["catalog"]?.maxConnections == 64)
        #expect(configuration.origins["search"]?.url.basePath == "/api")
        #expect(configuration.routes.count == 3)
        #expect(configuration.routes[1].defaultTTL == .seconds(30))
        #expect(configuration.routes[1].grace == .seconds(10))
        #expect(configuration.routes[1].negativeTTL == .seconds(5))
        #expect(configuration.routes[1].keep == .seconds(3600))
        #expect(configuration.routes[1].clientNoCache == .revalidate)
        #expect(configuration.routes[0].clientNoCache == .ignore)
        #expect(configuration.routes[2].cacheable == false)
        #expect(configuration.cache.memory.bytes == 512 << 20)
        #expect(configuration.cache.maxObjectSize.bytes == 4 << 20)
        #expect(configuration.limits.maxBody.bytes == 1 << 20)
        #expect(configuration.limits.maxHeaders == 64)
    }

    @Test(arguments: [
        ("routes[1].origin", "routes:\n  - prefix: /a/\n    origin: catalog\n  - prefix: /b/\n    origin: nowhere"),
        ("routes[0].default_ttl", "routes:\n  - prefix: /a/\n    origin: catalog\n    default_ttl: soon"),
        ("routes[0].colour", "routes:\n  - prefix: /a/\n    origin: catalog\n    colour: blue"),
        ("routes[0].prefix", "routes:\n  - prefix: a/\n    origin: catalog"),
        ("routes[0].origin", "routes:\n  - prefix: /a/"),
        ("cache.memory", "routes:\n  - prefix: /a/\n    origin: catalog\ncache:\n  memory: lots"),
        ("cache.shards", "routes:\n  - prefix: /a/\n    origin: catalog\ncache:\n  shards: 0"),
        ("admin.listen", "routes:\n  - prefix: /a/\n    origin: catalog\nadmin:\n  listen: 0.0.0.0:8081"),
        ("admin.token", "routes:\n  - prefix: /a/\n    origin: catalog\nadmin:\n  token: ${NOT_SET_ANYWHERE}"),
        ("admin.token", "routes:\n  - prefix: /a/\n    origin: catalog\nadmin:\n  token: short"),
        ("lisen", "lisen: 1.2.3.4:80\nroutes:\n  - prefix: /a/\n    origin: catalog"),
        ("redis.url", "routes:\n  - prefix: /a/\n    origin: catalog\nredis:\n  url: http://nope"),
        ("routes[0].client_no_cache", "routes:\n  - prefix: /a/\n    origin: catalog\n    client_no_cache: always"),
        ("routes[0].negative_ttl", "routes:\n  - prefix: /a/\n    origin: catalog\n    negative_ttl: never"),
        ("routes[0].forward_headers[1]", "routes:\n  - prefix: /a/\n    origin: catalog\n    forward_headers: [accept, host]"),
        ("routes[0].forward_headers[0]", "routes:\n  - prefix: /a/\n    origin: catalog\n    forward_headers: [\"a b\"]"),
        ("timeouts.client_header", "routes:\n  - prefix: /a/\n    origin: catalog\ntimeouts:\n  client_header: 0s"),
        ("timeouts.idle", "routes:\n  - prefix: /a/\n    origin: catalog\ntimeouts:\n  idle: 5s"),
        ("timeouts.send", "routes:\n  - prefix: /a/\n    origin: catalog\ntimeouts:\n  send: 1e400s"),
        ("limits.max_pending_output", "routes:\n  - prefix: /a/\n    origin: catalog\nlimits:\n  max_pending_output: 1k"),
        ("limits.max_connections", "routes:\n  - prefix: /a/\n    origin: catalog\nlimits:\n  max_connections: 0"),
        ("cache.memory", "routes:\n  - prefix: /a/\n    origin: catalog\ncache:\n  memory: 1e30GiB"),
        // Unknown keys are refused at every depth (one mechanism, StrictKeysDecoder, for all sections).
        ("routes[0].key.sort", "routes:\n  - prefix: /a/\n    origin: catalog\n    key:\n      sort: true"),
        ("routes[0].vary.max", "routes:\n  - prefix: /a/\n    origin: catalog\n    vary:\n      max: 3"),
        ("routes[0].cookies.keep", "routes:\n  - prefix: /a/\n    origin: catalog\n    cookies:\n      keep: [a]"),
        ("origins.catalog.timeout", "    timeout: 1s\nroutes:\n  - prefix: /a/\n    origin: catalog"),
        ("listings.pages[0].params.id.step",
         "routes:\n  - prefix: /a/\n    origin: catalog\nlistings:\n  pages:\n    - template: /a/{id}\n      params:\n        id:\n          range: [1, 2]\n          step: 1"),
        ("probes.listen", "probes:\n  listen: nowhere\nroutes:\n  - prefix: /a/\n    origin: catalog"),
        ("probes.token", "probes:\n  listen: 0.0.0.0:9145\n  token: x\nroutes:\n  - prefix: /a/\n    origin: catalog"),
        // TLS: certificates are needed, versions are named, the listener is its own.
        ("tls.certificates", "routes:\n  - prefix: /a/\n    origin: catalog\ntls:\n  listen: 0.0.0.0:8443\n  certificates: []"),
        ("tls.certificates[0].key", "routes:\n  - prefix: /a/\n    origin: catalog\ntls:\n  listen: 0.0.0.0:8443\n  certificates:\n    - {certificate: a.pem, key: ''}"),
        ("tls.certificates[0].names", "routes:\n  - prefix: /a/\n    origin: catalog\ntls:\n  listen: 0.0.0.0:8443\n  certificates:\n    - {certificate: a.pem, key: a.key, names: ['a b']}"),
        ("tls.min_version", "routes:\n  - prefix: /a/\n    origin: catalog\ntls:\n  listen: 0.0.0.0:8443\n  min_version: '1.1'\n  certificates:\n    - {certificate: a.pem, key: a.key}"),
        ("tls.listen", "routes:\n  - prefix: /a/\n    origin: catalog\nlisten: 127.0.0.1:8443\ntls:\n  listen: 127.0.0.1:8443\n  certificates:\n    - {certificate: a.pem, key: a.key}"),
        ("tls.certificates[0].chain", "routes:\n  - prefix: /a/\n    origin: catalog\ntls:\n  listen: 0.0.0.0:8443\n  certificates:\n    - {chain: a.pem, key: a.key}"),
        ("redis.channels", "routes:\n  - prefix: /a/\n    origin: catalog\nredis:\n  url: redis://127.0.0.1:6379\n  channels: x"),
        // A cluster: seeds as host:port, a URL or seeds (not both), and names that keep their slot.
        ("redis.cluster", "routes:\n  - prefix: /a/\n    origin: catalog\nredis:\n  cluster: [nope]"),
        ("redis.cluster", "routes:\n  - prefix: /a/\n    origin: catalog\nredis:\n  url: redis://a:1\n  cluster: [a:1]"),
        ("redis.url", "routes:\n  - prefix: /a/\n    origin: catalog\nredis:\n  channel: x"),
        ("redis.key_prefix", "routes:\n  - prefix: /a/\n    origin: catalog\nredis:\n  url: redis://a:1\n  key_prefix: 'v{t}'"),
        ("redis.key_prefix", "routes:\n  - prefix: /a/\n    origin: catalog\nredis:\n  url: redis://a:1\n  key_prefix: 'vt*'"),
        ("redis.channel", "routes:\n  - prefix: /a/\n    origin: catalog\nredis:\n  cluster: [a:1]\n  channel: 'a{b}'"),
    ])
    func aBadFileNamesTheKey(_ expectedKey: String, _ tail: String) {
        let yaml = "origins:\n  catalog:\n    url: http://127.0.0.1:9000\n" + tail
        #expect {
            try VitrineConfiguration.parse(yaml: yaml)
        } throws: { error in
            guard let error = error as? ConfigError else { return false }
            return error.key == expectedKey
        }
    }

    @Test func aProbeListenerMayListenAnywhere() throws {
        let yaml = "origins:\n  catalog:\n    url: http://127.0.0.1:9000\nprobes:\n  listen: 0.0.0.0:9145\nroutes:\n  - prefix: /\n    origin: catalog"
        let configuration = try VitrineConfiguration.parse(yaml: yaml)
        #expect(configuration.probes == ProbeSettings(listen: ListenAddress(host: "0.0.0.0", port: 9145)))
        #expect(try VitrineConfiguration.parse(yaml: "origins:\n  catalog:\n    url: http://127.0.0.1:9000\nroutes:\n  - prefix: /\n    origin: catalog").probes == nil)
    }

    @Test func aTLSListenerTakesItsCertificatesInOrder() throws {
        let yaml = """
            origins:
              catalog:
                url: http://127.0.0.1:9000
            routes:
              - prefix: /
                origin: catalog
            tls:
              listen: 0.0.0.0:8443
              min_version: "1.3"
              check_interval: 0s
              certificates:
                - certificate: ${CERTS}/shop.pem
                  key: ${CERTS}/shop.key
                - {certificate: /etc/other.pem, key: /etc/other.key, names: [other.example, "*.other.example"]}
            """
        let tls = try #require(try VitrineConfiguration.parse(yaml: yaml, environment: ["CERTS": "/etc/vitrine"]).tls)
        #expect(tls.listen == ListenAddress(host: "0.0.0.0", port: 8443))
        #expect(tls.minimumVersion == .tls13)
        #expect(tls.checkInterval == .zero)
        #expect(tls.certificates == [
            CertificateFiles(certificate: "/etc/vitrine/shop.pem", key: "/etc/vitrine/shop.key"),
            CertificateFiles(certificate: "/etc/other.pem", key: "/etc/other.key", names: ["other.example", "*.other.example"]),
        ])
    }

    @Test func aReloadSwapsCertificatesButNotTheTLSListener() throws {
        var old = VitrineConfiguration.singleOrigin(OriginURL(parsing: "http://127.0.0.1:9000")!)
        old.tls = TLSSettings(listen: ListenAddress(host: "0.0.0.0", port: 8443), certificates: [CertificateFiles(certificate: "a.pem", key: "a.key")])
        var renewed = old
        renewed.tls?.certificates = [CertificateFiles(certificate: "b.pem", key: "b.key")]
        let change = ConfigurationChange(from: old, to: renewed)
        #expect(change.applied == ["tls"] && change.needsRestart.isEmpty)
        #expect(ConfigurationChange.merged(running: old, loaded: renewed).tls == renewed.tls)
        var moved = renewed
        moved.tls?.listen = ListenAddress(host: "0.0.0.0", port: 9443)
        #expect(ConfigurationChange(from: old, to: moved).needsRestart == ["tls"])
        #expect(ConfigurationChange.merged(running: old, loaded: moved).tls == old.tls, "the running listener keeps its certificates until a restart")
    }

    @Test func badOriginURLNamesTheOrigin() {
        let yaml = "origins:\n  catalog:\n    url: ftp://x\nroutes:\n  - prefix: /\n    origin: catalog"
        #expect(throws: ConfigError(key: "origins.catalog.url", "'ftp://x' is not an http:// or https://host:port URL")) {
            try VitrineConfiguration.parse(yaml: yaml)
        }
    }

    @Test func connectionBoundsAndForwardedFieldsParse() throws {
        let yaml = """
            origins:
              catalog:
                url: http://127.0.0.1:9000
            routes:
              - prefix: /a/
                origin: catalog
                forward_headers: [Accept, X-Device]
            limits:
              max_connections: 500
              max_pending_output: 256KiB
            timeouts:
              client_header: 5s
              client_body: 7s
              keepalive: 30s
              send: 20s
              linger: 500ms
            """
        let configuration = try VitrineConfiguration.parse(yaml: yaml)
        #expect(configuration.routes[0].forwardHeaders == ["accept", "x-device"])
        #expect(configuration.limits.maxConnections == 500)
        #expect(configuration.limits.maxPendingOutput.bytes == 256 << 10)
        #expect(configuration.timeouts.clientHeader == .seconds(5))
        #expect(configuration.timeouts.clientBody == .seconds(7))
        #expect(configuration.timeouts.keepalive == .seconds(30))
        #expect(configuration.timeouts.send == .seconds(20))
        #expect(configuration.timeouts.linger == .milliseconds(500))
    }

    @Test func theFeedCursorLivesInTheStateDirectory() throws {
        let base = "origins:\n  catalog:\n    url: http://127.0.0.1:9000\nroutes:\n  - prefix: /\n    origin: catalog\n"
        let postgres = "postgres:\n  url: postgres://app@db/shop\n  channel: shop_changes\n"
        let defaults = try VitrineConfiguration.parse(yaml: base + postgres)
        #expect(defaults.stateDirectory == "/var/lib/vitrine")
        #expect(defaults.postgres?.cursorPath(stateDirectory: defaults.stateDirectory) == "/var/lib/vitrine/feed-shop_changes.cursor")
        let named = try VitrineConfiguration.parse(yaml: base + postgres + "state_dir: /srv/vitrine/state\n")
        #expect(named.postgres?.cursorPath(stateDirectory: named.stateDirectory) == "/srv/vitrine/state/feed-shop_changes.cursor")
        let file = try VitrineConfiguration.parse(yaml: base + postgres + "  cursor_file: /data/c.cursor\n")
        #expect(file.postgres?.cursorPath(stateDirectory: file.stateDirectory) == "/data/c.cursor")
        let redis = try VitrineConfiguration.parse(yaml: base + "redis:\n  url: redis://r:6379/0\n  write_purge_timeout: 250ms\n")
        #expect(redis.redis?.writePurgeTimeout == .milliseconds(250))
        #expect(try VitrineConfiguration.parse(yaml: base + "redis:\n  url: redis://r:6379/0\n").redis?.writePurgeTimeout == .milliseconds(500))
        let cluster = try VitrineConfiguration.parse(yaml: base + "redis:\n  cluster: [r1:7000, r2:7001]\n  key_prefix: shop-a\n")
        #expect(cluster.redis?.url == "redis-cluster://r1:7000,r2:7001")
        #expect(cluster.redis?.isCluster == true)
        #expect(cluster.redis?.keyPrefix == "shop-a")
        #expect(try VitrineConfiguration.parse(yaml: base + "redis:\n  url: rediss-cluster://:pw@r1:7000\n").redis?.isCluster == true)
        #expect(redis.redis?.isCluster == false)
        #expect(redis.redis?.keyPrefix == "vt")
        #expect(throws: ConfigError(key: "state_dir", "must name a directory")) {
            try VitrineConfiguration.parse(yaml: base + "state_dir: ''\n")
        }
    }

    @Test func valuesOutOfRangeAreNotValues() {
        #expect(ConfigDuration.parse("1e400s") == nil)
        #expect(ConfigDuration.parse("inf") == nil)
        #expect(ConfigDuration.parse("nan") == nil)
        #expect(ConfigDuration.parse("99999999999999999999d") == nil)
        #expect(ByteSize.parse("1e30GiB") == nil)
        #expect(ByteSize.parse("infk") == nil)
    }

    @Test func valuesParse() {
        #expect(ConfigDuration.parse("250ms") == .milliseconds(250))
        #expect(ConfigDuration.parse("2h") == .seconds(7200))
        #expect(ConfigDuration.parse("1.5s") == .milliseconds(1500))
        #expect(ConfigDuration.parse("-1s") == nil)
        #expect(ByteSize.parse("64k") == 65536)
        #expect(ByteSize.parse("1 GiB") == 1 << 30)
        #expect(ByteSize.parse("12") == 12)
        #expect(ListenAddress(parsing: "[::1]:8080") == ListenAddress(host: "::1", port: 8080))
        #expect(ListenAddress(parsing: ":80") == ListenAddress(host: "0.0.0.0", port: 80))
        #expect(ListenAddress(parsing: "host") == nil)
        #expect(OriginURL(parsing: "http://[::1]:9000/x/")?.basePath == "/x")
        #expect(OriginURL(parsing: "http://example.com")?.port == 80)
    }

    @Test func anHTTPSOriginIsVerifiedAgainstTheRootsOrItsCA() throws {
        let https = try #require(OriginURL(parsing: "https://catalog.internal/api/"))
        #expect(https.tls && https.port == 443 && https.basePath == "/api" && https.hostField == "catalog.internal")
        #expect(OriginURL(parsing: "https://catalog.internal:8443")?.hostField == "catalog.internal:8443")
        #expect(OriginURL(parsing: "https://catalog.internal:80")?.hostField == "catalog.internal:80")
        #expect(OriginURL(parsing: "http://catalog.internal")?.tls == false)
        #expect(OriginURL(parsing: "https://catalog.internal:8443")?.description == "https://catalog.internal:8443")
        let yaml = """
            origins:
              catalog:
                url: https://10.0.0.5:8443
                ca: ${CERTS}/ca.pem
                server_name: catalog.internal
            routes:
              - prefix: /
                origin: catalog
            """
        let origin = try #require(try VitrineConfiguration.parse(yaml: yaml, environment: ["CERTS": "/etc/vitrine"]).origins["catalog"])
        #expect(origin.caFile == "/etc/vitrine/ca.pem" && origin.serverName == "catalog.internal" && origin.url.tls)
        // Verifying a cleartext origin's certificate means nothing: refused, not ignored.
        #expect(throws: ConfigError.self) {
            try VitrineConfiguration.parse(yaml: "origins:\n  catalog:\n    url: http://a:1\n    ca: /etc/ca.pem\nroutes:\n  - prefix: /\n    origin: catalog")
        }
        #expect(throws: ConfigError.self) {
            try VitrineConfiguration.parse(yaml: "origins:\n  catalog:\n    url: https://a:1\n    server_name: 'a b'\nroutes:\n  - prefix: /\n    origin: catalog")
        }
    }

    @Test func exampleConfigFilesAreValid() throws {
        let directory = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("../../config")
        let files = try FileManager.default.contentsOfDirectory(atPath: directory.path).filter { $0.hasSuffix(".yaml") }
        #expect(!files.isEmpty)
        for file in files {
            _ = try VitrineConfiguration.load(
                path: directory.appendingPathComponent(file).path,
                environment: [
                    "VITRINE_ADMIN_TOKEN": "example-token-0123456789", "VITRINE_REDIS_URL": "redis://127.0.0.1:6379/0",
                    "VITRINE_POSTGRES_URL": "postgres://vitrine@127.0.0.1:5432/catalog",
                ])
        }
    }

    @Test func demoFileDeclaresTheDemoListings() throws {
        let path = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("../../config/demo.yaml").path
        let configuration = try VitrineConfiguration.load(path: path, environment: ["VITRINE_ADMIN_TOKEN": "example-token-0123456789"])
        #expect(configuration.listings == ListingsSettings.demo)
        // The file and `vitrine demo` ignore the same analytics and consent cookies on the catalog and search.
        let demo = VitrineConfiguration.demo(origin: OriginURL(parsing: "http://127.0.0.1:9")!, port: 0, adminPort: 0, token: "t")
        for prefix in ["/catalog/", "/search/"] {
            let fromFile = configuration.routes.first { $0.prefix == prefix }?.cookies
            #expect(fromFile == .ignore(RouteSettings.analyticsCookies))
            #expect(demo.routes.first { $0.prefix == prefix }?.cookies == fromFile)
        }
    }

    @Test func varyBoundsParse() throws {
        let base = "origins:\n  catalog:\n    url: http://127.0.0.1:9000\nroutes:\n  - prefix: /\n    origin: catalog\n"
        #expect(try VitrineConfiguration.parse(yaml: base).routes[0].vary == VarySettings())
        let vary = try VitrineConfiguration.parse(yaml: base + "    vary: {max_variants: 8, accept_language: [en, fr, de-CH]}\n").routes[0].vary
        #expect(vary.maxVariants == 8 && vary.languages == ["en", "fr", "de-CH"])
        #expect(throws: ConfigError(key: "routes[0].vary.max_variants", "must be 1 to 1024")) {
            try VitrineConfiguration.parse(yaml: base + "    vary: {max_variants: 0}\n")
        }
        #expect(throws: ConfigError(key: "routes[0].vary.accept_language[0]", "'*' is not a language tag")) {
            try VitrineConfiguration.parse(yaml: base + "    vary: {accept_language: ['*']}\n")
        }
    }

    @Test func cookiePoliciesParse() throws {
        let base = "origins:\n  catalog:\n    url: http://127.0.0.1:9000\nroutes:\n  - prefix: /\n    origin: catalog\n"
        #expect(try VitrineConfiguration.parse(yaml: base).routes[0].cookies == .pass)
        #expect(try VitrineConfiguration.parse(yaml: base + "    cookies: ignore\n").routes[0].cookies == .ignoreAll)
        let listed = try VitrineConfiguration.parse(yaml: base + "    cookies: {ignore: [_ga*, consent]}\n    strip_set_cookie: true\n")
        #expect(listed.routes[0].cookies == .ignore(["_ga*", "consent"]))
        #expect(listed.routes[0].stripSetCookie)
        #expect(throws: ConfigError(key: "routes[0].cookies", "'sometimes' is not pass, ignore or {ignore: [names]}")) {
            try VitrineConfiguration.parse(yaml: base + "    cookies: sometimes\n")
        }
        #expect(throws: ConfigError(key: "routes[0].cookies.ignore[0]", "'a b' is not a cookie name (or a prefix ending in *)")) {
            try VitrineConfiguration.parse(yaml: base + "    cookies: {ignore: [a b]}\n")
        }
    }

    @Test func listingErrorsNameTheKey() {
        func parse(_ listings: String) throws {
            _ = try VitrineConfiguration.parse(
                yaml: """
                    origins: {catalog: {url: "http://127.0.0.1:9000"}}
                    routes: [{prefix: /, origin: catalog}]
                    admin: {token: example-token-0123456789}
                    listings:
                    \(listings)
                    """)
        }
        #expect(throws: ConfigError(key: "listings.pages[0].params.page", "the template uses {page}: say where its values come from")) {
            try parse("  pages: [{template: \"/c/{id}?page={page}\", params: {id: {values: [1]}}}]")
        }
        #expect(throws: ConfigError(key: "listings.pages[0].params.sort", "not in the template")) {
            try parse("  pages: [{template: \"/c/{id}\", params: {id: {values: [1]}, sort: {values: [a]}}}]")
        }
        #expect(throws: ConfigError(key: "listings.pages[0].params.id", "give exactly one of values, range or index")) {
            try parse("  pages: [{template: \"/c/{id}\", params: {id: {values: [1], range: [1, 2]}}}]")
        }
        #expect(throws: ConfigError(key: "listings.pages[0].tags", "'x:{nope}' names a parameter the template does not have")) {
            try parse("  pages: [{template: \"/c/{id}\", params: {id: {range: [1, 2]}}, tags: [\"x:{nope}\"]}]")
        }
        #expect(throws: ConfigError(key: "listings.concurrency", "must be positive")) { try parse("  concurrency: 0") }
    }
}
