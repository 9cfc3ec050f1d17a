import NIOCore
import NIOHTTP1
import VitrineCore

/// Where a request's answer goes: the answering side of a transport (an HTTP/1.1 connection, an
/// HTTP/2 stream), as Varnish's transport table and Envoy's `ResponseEncoder` are. The request
/// path and a fetch say what is answered (a stored response, a streamed head, body parts, the
/// end, an interim response, an error); each transport says it in its own framing. Nothing that
/// calls a sink reads or writes HTTP/1.1 text. Background refreshes and listing fetches have no
/// sink: they learn how a fetch ended from its `FetchOutcome`.
protocol ResponseSink: AnyObject {
    var allocator: ByteBufferAllocator { get }
    /// The client can take more now; false pauses the origin.
    var canAcceptMore: Bool { get }
    /// Writes an answer's head (and, for a stored response, its body): the one delivery function.
    func deliver(_ delivery: Delivery, for request: HTTPRequestHead, keepAlive: Bool)
    /// An interim response (1xx) before the final one: its fields are the origin's visible ones.
    func sendInterim(_ status: HTTPResponseStatus, fields: HTTPHeaders, for request: HTTPRequestHead)
    /// A part of a streamed body, as the origin sent it: the transport frames it.
    func sendBodyPart(_ buffer: ByteBuffer)
    /// The streamed body is complete.
    func sendBodyEnd()
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
    /// The head of a fetched response; its body follows as it streams (`purge`: `Vitrine-Purge`
    /// when a write's purge did not reach the shared tier).
    case streamed(status: HTTPResponseStatus, fields: HTTPHeaders, body: StreamedBody, purge: String?, CacheVerdict)
    /// The proxy's own error.
    case error(ProxyError)

    /// A stale entry served, with why (`stale-while-revalidate`, `stale-if-error`, ...).
    static func stale(_ hit: CacheHit<CachedResponse>, detail: String) -> Delivery {
        .stored(hit.value, age: hit.age, .stale(ttl: hit.ttlSeconds, detail: detail))
    }
}

/// What follows a streamed head. `fields` keep the origin's `Content-Length` when it gave one.
enum StreamedBody: Equatable {
    /// No body (a HEAD, a 304, a 204).
    case none
    /// As long as the origin's `Content-Length` says.
    case sized
    /// Of a length nobody knows until its end: the transport frames it (chunks on HTTP/1.1, the
    /// connection's close on HTTP/1.0, DATA frames on HTTP/2).
    case unsized
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
