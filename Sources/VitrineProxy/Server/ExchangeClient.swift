import NIOCore
import NIOHTTP1
import VitrineCore

/// The client connection a fetch delivers to. Background refreshes and listing fetches have
/// none: they learn how a fetch ended from its `FetchOutcome`.
protocol ExchangeClient: AnyObject {
    var allocator: ByteBufferAllocator { get }
    /// The client's socket can take more now; false pauses the origin.
    var canAcceptMore: Bool { get }
    /// Writes an answer's head (and, for a stored response, its body): the one delivery function.
    func deliver(_ delivery: Delivery, for request: HTTPRequestHead, keepAlive: Bool)
    /// Writes bytes of a streamed body, framed already.
    func write(_ buffer: ByteBuffer)
    func flush()
    /// The origin's response head came, `nanoseconds` after the fetch began (for the access log).
    func originResponded(after nanoseconds: Int64)
    /// The response is completely written (or abandoned).
    func exchangeFinished(keepAlive: Bool)
}

/// What the client is given.
enum Delivery {
    /// A stored response as it is kept, with its age: a hit, a stale entry, a collapsed fetch's
    /// response, a revalidated one, a listing page.
    case stored(CachedResponse, age: Int, CacheVerdict)
    /// The head of a fetched response; its body follows as it streams (`chunked`: framed as
    /// chunks; `purge`: `Vitrine-Purge` when a write's purge did not reach the shared tier).
    case streamed(status: HTTPResponseStatus, fields: HTTPHeaders, chunked: Bool, purge: String?, CacheVerdict)
    /// The proxy's own error.
    case error(ProxyError)

    /// A stale entry served, with why (`stale-while-revalidate`, `stale-if-error`, ...).
    static func stale(_ hit: CacheHit<CachedResponse>, detail: String) -> Delivery {
        .stored(hit.value, age: hit.age, .stale(ttl: hit.ttlSeconds, detail: detail))
    }
}

/// How a fetch ended, for whoever started it without a client (a background refresh, a
/// listing) and for the log.
enum FetchOutcome {
    /// Stored in L1 (and the shared tier, when it was looked up first).
    case stored(CachedResponse)
    /// Answered with `status` and passed on as it came: not storable (uncacheable, too large,
    /// a `HEAD`, a pass or a write).
    case passed(status: Int)
    /// Storable, but a purge touched it while it was fetched: not stored (nor handed to the
    /// requests collapsed into it).
    case purgedDuringFetch(status: Int)
    /// No answer from the origin.
    case failed(ProxyError)
    /// The client went away first.
    case abandoned
}
