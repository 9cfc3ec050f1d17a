import NIOCore
import NIOHTTP1
import VitrineCore

/// Where a forwarded exchange delivers its response: a client connection, or nowhere (a
/// background refresh that only stores).
protocol ExchangeClient: AnyObject {
    var proxy: ProxyContext { get }
    var allocator: ByteBufferAllocator { get }
    var clientAddress: String { get }
    /// The client's socket can take more now; false pauses the origin.
    var canAcceptMore: Bool { get }
    var closing: Bool { get }
    func write(_ buffer: ByteBuffer)
    func flush()
    func respond(_ error: ProxyError, keepAlive: Bool)
    /// Writes a stored response the way a hit is written.
    func deliverStored(
        _ response: CachedResponse, age: Int, cacheStatus: String?, ttl: Int, xCache: CacheResult, for request: HTTPRequestHead,
        keepAlive: Bool)
    /// Writes a stale entry because the origin failed (RFC 5861 stale-if-error).
    func deliverStaleIfError(_ stale: CacheHit<CachedResponse>, for head: HTTPRequestHead, keepAlive: Bool)
    /// The response is completely written (or abandoned).
    func exchangeFinished(keepAlive: Bool)
    func logAccess(_ head: HTTPRequestHead, status: Int, result: String)
    /// The exchange stored its response in L1 (listing fetches keep it).
    func responseStored(_ response: CachedResponse)
}

extension ExchangeClient {
    func responseStored(_ response: CachedResponse) {}
}

/// The client of a background refresh: nothing is written anywhere.
final class BackgroundClient: ExchangeClient {
    let proxy: ProxyContext
    let allocator = ByteBufferAllocator()
    let clientAddress = "vitrine-refresh"
    let canAcceptMore = true
    let closing = false

    init(proxy: ProxyContext) {
        self.proxy = proxy
    }

    func write(_ buffer: ByteBuffer) {}
    func flush() {}
    func respond(_ error: ProxyError, keepAlive: Bool) {}
    func deliverStored(
        _ response: CachedResponse, age: Int, cacheStatus: String?, ttl: Int, xCache: CacheResult, for request: HTTPRequestHead,
        keepAlive: Bool
    ) {}
    func deliverStaleIfError(_ stale: CacheHit<CachedResponse>, for head: HTTPRequestHead, keepAlive: Bool) {}
    func exchangeFinished(keepAlive: Bool) {}
    func logAccess(_ head: HTTPRequestHead, status: Int, result: String) {}
}
