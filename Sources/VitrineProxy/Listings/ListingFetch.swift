import NIOCore
import NIOHTTP1
import VitrineCore

/// The client of a listing fetch: nothing is written anywhere; it keeps the response the
/// exchange stored and reports how the fetch ended.
final class ListingFetchClient: ExchangeClient {
    let proxy: ProxyContext
    let allocator = ByteBufferAllocator()
    let clientAddress = "vitrine-listings"
    let canAcceptMore = true
    let closing = false
    private var stored: CachedResponse?
    private var failure: String?
    private let onEnd: (Result<CachedResponse, ListingFetchError>) -> Void

    init(proxy: ProxyContext, onEnd: @escaping (Result<CachedResponse, ListingFetchError>) -> Void) {
        self.proxy = proxy
        self.onEnd = onEnd
    }

    func responseStored(_ response: CachedResponse) { stored = response }
    func write(_ buffer: ByteBuffer) {}
    func flush() {}
    func respond(_ error: ProxyError, keepAlive: Bool) { failure = "\(error)" }
    func deliverStored(
        _ response: CachedResponse, age: Int, cacheStatus: String?, ttl: Int, xCache: CacheResult, for request: HTTPRequestHead,
        keepAlive: Bool
    ) {}
    func deliverStaleIfError(_ stale: CacheHit<CachedResponse>, for head: HTTPRequestHead, keepAlive: Bool) {}
    func logAccess(_ head: HTTPRequestHead, status: Int, result: String) {
        if stored == nil && failure == nil && status >= 400 { failure = "origin answered \(status)" }
    }

    func exchangeFinished(keepAlive: Bool) {
        if let stored, stored.status == .ok {
            onEnd(.success(stored))
        } else {
            onEnd(.failure(ListingFetchError(reason: failure ?? "the origin's answer was not stored (uncacheable, or purged meanwhile)")))
        }
    }
}

struct ListingFetchError: Error, CustomStringConvertible {
    let reason: String
    var description: String { reason }
}
