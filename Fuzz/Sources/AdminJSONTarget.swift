import NIOCore
import NIOHTTP1
import NIOEmbedded
import VitrineConfig
import VitrineCore
@testable import VitrineProxy

/// The admin API's purge bodies (JSON) and `PURGE` targets, through a real store and invalidator.
enum AdminJSONTarget {
    static let token = "fuzz-token-0123456789"
    static let api: AdminAPI = {
        let configuration = VitrineConfiguration.singleOrigin(OriginURL(parsing: "http://127.0.0.1:9")!)
        let store = ResponseStore(byteBudget: 1 << 20, shardCount: 4)
        let stats = ProxyStats()
        let metrics = ProxyMetrics()
        // An embedded loop for the origin pools the routes carry (nothing is fetched here).
        let routes = Reloadable(Router(configuration: configuration, group: EmbeddedEventLoop()))
        let invalidator = Invalidator(store: store, routes: routes, stats: stats, metrics: metrics)
        return AdminAPI(token: token, invalidator: invalidator, store: store, stats: stats, metrics: metrics)
    }()

    static func run(_ bytes: [UInt8]) {
        var headers = HTTPHeaders()
        headers.add(name: "Authorization", value: "Bearer \(token)")
        let body = ByteBuffer(bytes: bytes)
        _ = api.handle(AdminRequest(method: .POST, uri: "/purge", headers: headers, body: body))
        let target = String(decoding: bytes.prefix(256), as: UTF8.self)
        _ = api.handle(AdminRequest(method: .PURGE, uri: target, headers: headers, body: ByteBuffer()))
        var wrong = HTTPHeaders()
        wrong.add(name: "Authorization", value: String(decoding: bytes.prefix(64), as: UTF8.self))
        let refused = api.handle(AdminRequest(method: .GET, uri: "/stats", headers: wrong, body: ByteBuffer()))
        precondition(refused.status == .unauthorized || wrong.first(name: "authorization") == "Bearer \(token)", "a wrong token was accepted")
    }
}
