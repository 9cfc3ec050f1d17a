import NIOCore
import NIOPosix
import NIOHTTP1
import Testing
import VitrineConfig
import VitrineCore
@testable import VitrineProxy

@Suite struct AdminAPITests {
    @Test func constantTimeEqualsComparesWholeTokens() {
        #expect(AdminAPI.constantTimeEquals(Array("secret-token".utf8), Array("secret-token".utf8)))
        #expect(!AdminAPI.constantTimeEquals(Array("secret-token".utf8), Array("secret-tokem".utf8)))
        #expect(!AdminAPI.constantTimeEquals(Array("secret".utf8), Array("secret-token".utf8)))
        #expect(!AdminAPI.constantTimeEquals([], Array("x".utf8)))
    }

    @Test func purgeTargetsAcceptPathsAndURLs() {
        #expect(Invalidator.requestTarget("/a?b=1") == "/a?b=1")
        #expect(Invalidator.requestTarget("https://shop.test/a/b") == "/a/b")
        #expect(Invalidator.requestTarget("http://shop.test") == "/")
        #expect(Invalidator.requestTarget("not a key") == nil)
    }

    @Test func softPurgeAndCountsAreReported() {
        let store = ResponseStore(byteBudget: 1 << 20, shardCount: 2, clock: ManualClock())
        let stats = ProxyStats()
        let metrics = ProxyMetrics()
        let routes = Reloadable(
            Router(configuration: .singleOrigin(OriginURL(parsing: "http://127.0.0.1:9")!), group: MultiThreadedEventLoopGroup.singleton))
        let api = AdminAPI(
            token: "t0123456789abcdef", invalidator: Invalidator(store: store, routes: routes, stats: stats, metrics: metrics), store: store,
            stats: stats, metrics: metrics)
        var headers = HTTPHeaders()
        headers.add(name: "Authorization", value: "Bearer t0123456789abcdef")
        let response = api.handle(
            AdminRequest(
                method: .POST, uri: "/purge", headers: headers,
                body: ByteBuffer(string: #"{"tags":["a","b"],"keys":["/x"],"prefixes":["/y/"],"soft":true}"#)))
        #expect(response.status == .ok)
        #expect(String(decoding: response.body, as: UTF8.self) == #"{"purged":0,"tags":2,"keys":1,"prefixes":1,"soft":true}"#)
        #expect(stats.value(.purges) == 1)
        let notReady = api.handle(AdminRequest(method: .GET, uri: "/readyz", headers: headers, body: ByteBuffer()))
        #expect(notReady.status == .serviceUnavailable)
    }
}
