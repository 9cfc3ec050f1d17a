import Foundation
import Logging
import Synchronization
import NIOCore
import NIOPosix
import VitrineConfig
import VitrineCore
import VitrineDemoOrigin
@testable import VitrineNode
@testable import VitrineProxy

/// The demo origin and a proxy in front of it, both on free loopback ports, for one test.
final class ProxyFixture: Sendable {
    static let token = "test-token-0123456789abcdef"

    let origin: DemoOrigin?
    let node: ProxyNode
    let proxyPort: Int
    let adminPort: Int
    /// The probe listener's port, when `probes` is configured.
    let probePort: Int?
    /// The TLS listener's port, when `tls` is configured.
    let tlsPort: Int?
    let originPort: Int

    /// - Parameters:
    ///   - originURL: an origin to use instead of starting the demo origin.
    ///   - catalog: the demo origin's catalog (default: `products` generated, in memory).
    ///   - configure: changes to the demo configuration.
    static func start(
        originURL: String? = nil,
        products: Int = 300,
        catalog: (any CatalogStore)? = nil,
        clock: any CacheClock = SystemClock(),
        accessLog: LogLines? = nil,
        reload: ConfigReloader? = nil,
        configure: (inout VitrineConfiguration) -> Void = { _ in }
    ) async throws -> ProxyFixture {
        let group = MultiThreadedEventLoopGroup.singleton
        var logger = Logger(label: "vitrine-test")
        logger.logLevel = ProcessInfo.processInfo.environment["VITRINE_TEST_LOG"].flatMap(Logger.Level.init(rawValue:)) ?? .critical
        var origin: DemoOrigin?
        let url: OriginURL
        if let originURL {
            url = OriginURL(parsing: originURL)!
        } else {
            let demo = DemoOrigin(
                port: 0, catalog: catalog ?? DemoCatalog(productCount: products), group: group, logger: logger)
            let address = try await demo.start()
            origin = demo
            url = OriginURL(parsing: "http://127.0.0.1:\(address.port!)")!
        }
        var configuration = VitrineConfiguration.demo(origin: url, port: 0, adminPort: 0, token: token)
        // Short enough that a stuck test fails soon; long enough for the echo origin's slowest
        // answer (1.5 s) on a loaded two-core machine running the suites in parallel.
        for name in configuration.origins.keys {
            configuration.origins[name]?.firstByteTimeout = .seconds(5)
            configuration.origins[name]?.connectTimeout = .seconds(1)
        }
        // Listings warm hundreds of pages at start: only the tests about them ask for them.
        configuration.listings = ListingsSettings()
        configure(&configuration)
        let node = try ProxyNode(configuration: configuration, group: group, logger: logger, clock: clock, accessLogSink: accessLog?.sink, reload: reload?.load)
        let listening = try await node.start()
        return ProxyFixture(
            origin: origin, node: node, proxyPort: listening.proxy.port!, adminPort: listening.admin.port!,
            probePort: listening.probes?.port, tlsPort: listening.tls?.port, originPort: url.port)
    }

    private init(origin: DemoOrigin?, node: ProxyNode, proxyPort: Int, adminPort: Int, probePort: Int?, tlsPort: Int?, originPort: Int) {
        self.tlsPort = tlsPort
        self.origin = origin
        self.node = node
        self.proxyPort = proxyPort
        self.adminPort = adminPort
        self.probePort = probePort
        self.originPort = originPort
    }

    func stop() async {
        await node.stop()
        await origin?.stop()
    }

    /// Runs `body` with a fixture and stops it afterwards, even when the body throws.
    static func with<T: Sendable>(
        originURL: String? = nil,
        catalog: (any CatalogStore)? = nil,
        clock: any CacheClock = SystemClock(),
        accessLog: LogLines? = nil,
        reload: ConfigReloader? = nil,
        configure: (inout VitrineConfiguration) -> Void = { _ in },
        _ body: (ProxyFixture) async throws -> T
    ) async throws -> T {
        let fixture = try await start(
            originURL: originURL, catalog: catalog, clock: clock, accessLog: accessLog, reload: reload, configure: configure)
        do {
            let result = try await body(fixture)
            await fixture.stop()
            return result
        } catch {
            await fixture.stop()
            throw error
        }
    }

    /// One request on a new connection to the proxy.
    func get(_ target: String, headers: [(String, String)] = []) async throws -> WireResponse {
        try await WireConnection.with(port: proxyPort) { try await $0.request("GET", target, headers: headers) }
    }

    func send(_ method: String, _ target: String, headers: [(String, String)] = [], body: String? = nil) async throws -> WireResponse {
        try await WireConnection.with(port: proxyPort) { try await $0.request(method, target, headers: headers, body: body) }
    }

    /// One call to the admin API, with the token unless `authorized` is false.
    func admin(_ method: String, _ target: String, body: String? = nil, authorized: Bool = true) async throws -> WireResponse {
        try await WireConnection.with(port: adminPort) {
            try await $0.request(
                method, target, headers: authorized ? [("Authorization", "Bearer \(Self.token)")] : [], body: body)
        }
    }
}

/// What a node's access log wrote, gathered for a test to read.
final class LogLines: Sendable {
    private let bytes = Mutex<[UInt8]>([])
    var sink: @Sendable ([UInt8]) -> Void { { chunk in self.bytes.withLock { $0 += chunk } } }
    var lines: [String] { bytes.withLock { String(decoding: $0, as: UTF8.self) }.split(separator: "\n").map(String.init) }

    /// Waits (up to two seconds) until at least `count` lines are written: a request is logged
    /// once its answer is written, which a client may read a moment before that.
    func wait(for count: Int, flushing log: AccessLog?) async throws -> [String] {
        for _ in 0..<200 {
            log?.flush()
            if lines.count >= count { break }
            try await Task.sleep(for: .milliseconds(10))
        }
        return lines
    }

    /// Each line as a JSON object.
    func json() throws -> [[String: Any]] {
        try lines.map { line in
            guard let object = try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any] else {
                throw WireError.malformed(line)
            }
            return object
        }
    }
}

/// What a fixture's node reads on a reload (not a bare closure, so that a trailing closure still
/// means `configure`).
struct ConfigReloader: Sendable {
    let load: @Sendable () throws -> VitrineConfiguration
}
