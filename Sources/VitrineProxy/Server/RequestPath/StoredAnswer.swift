import NIOCore
import NIOHTTP1
import VitrineCore

/// What of a stored response a request is given, decided once by the request path from the
/// request's conditional, range and coding fields; each transport then writes it in its own
/// framing (the HTTP/1.1 head bytes kept at store time, or the HTTP/2 field list).
enum StoredAnswer {
    /// The whole response: its gzip representation when `gzip`; without the body for a `HEAD`.
    case full(CachedResponse, gzip: Bool, headOnly: Bool)
    /// `304 Not Modified` to a conditional request that matches (RFC 9110 §13.2.2).
    case notModified(CachedResponse)
    /// `206 Partial Content`: bytes `first...last` of the identity body (RFC 9110 §14).
    case partial(CachedResponse, first: Int, last: Int)
    /// `416 Range Not Satisfiable`, saying the length.
    case unsatisfiable(CachedResponse)

    /// The answer `request` gets from `response`.
    static func choose(_ response: CachedResponse, for request: HTTPRequestHead) -> StoredAnswer {
        if response.isNotModified(for: request.headers) { return .notModified(response) }
        if request.method == .GET, response.status == .ok, request.headers.contains(name: "range"),
            response.rangeApplies(ifRange: request.headers.first(name: "if-range"))
        {
            switch ByteRangeRequest.evaluate(request.headers["range"], length: response.body.readableBytes) {
            case .single(let first, let last): return .partial(response, first: first, last: last)
            case .unsatisfiable: return .unsatisfiable(response)
            case .whole: break
            }
        }
        let gzip = response.gzip != nil && VaryKey.acceptsGzip(request.headers)
        return .full(response, gzip: gzip, headOnly: request.method == .HEAD)
    }

    /// The status the client is given.
    var status: Int {
        switch self {
        case .full(let response, _, _): return Int(response.status.code)
        case .notModified: return 304
        case .partial: return 206
        case .unsatisfiable: return 416
        }
    }

    /// The body written after the head: a slice of the stored bytes, never a copy; nil for none.
    var body: ByteBuffer? {
        switch self {
        case .full(let response, let gzip, let headOnly):
            if headOnly { return nil }
            return gzip ? response.gzip?.body ?? response.body : response.body
        case .notModified, .unsatisfiable:
            return nil
        case .partial(let response, let first, let last):
            return response.body.getSlice(at: response.body.readerIndex + first, length: last - first + 1)
        }
    }
}

/// What the request path needs of the transport a request came by (an HTTP/1.1 connection, an
/// HTTP/2 stream): where the request stands (`machine`), its record, the routes and listings it
/// is served from, and how each kind of answer is written there. The request path itself
/// (`RequestPipeline.swift`) is written once, over this protocol.
protocol RequestTransport: ResponseSink, SendableMetatype {
    var proxy: ProxyContext { get }
    /// Where the request being answered is: every decision about it is the machine's.
    var machine: RequestStateMachine<ForwardExchange, CollapseWait> { get set }
    /// The request being answered, for the access log and the request metrics.
    var record: RequestRecord? { get set }
    /// The routes now; a request reads them once, at receive.
    var router: Router { get }
    /// The listings now; a request reads them once.
    var listings: Listings { get }
    var eventLoop: any EventLoop { get }
    /// Writes a stored response's answer, with `Age` and the verdict's fields.
    func sendStored(_ answer: StoredAnswer, age: Int, verdict: CacheVerdict, for request: HTTPRequestHead, keepAlive: Bool)
    /// Writes a fetched response's head; its body follows through `sendBodyPart`.
    func sendHead(
        _ status: HTTPResponseStatus, fields: HTTPHeaders, body: StreamedBody, purge: String?, verdict: CacheVerdict,
        for request: HTTPRequestHead, keepAlive: Bool)
    /// Answers with the proxy's own error, ending the connection unless `keepAlive` (on HTTP/1.1).
    func respond(_ error: ProxyError, keepAlive: Bool)
    /// Writes the proxy's own error answer.
    func sendError(_ error: ProxyError, keepAlive: Bool)
    /// The request's whole answer is written (`keepAlive`: the connection may go on).
    func answered(keepAlive: Bool)
    /// Flushes once the event loop has handled every ready channel.
    func flushSoon()
}
