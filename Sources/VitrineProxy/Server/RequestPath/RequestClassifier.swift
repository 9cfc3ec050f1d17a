import NIOHTTP1
import VitrineCore

/// The first decision of the pipeline: may this request be answered from the cache at all?
enum RequestClass: Equatable {
    /// GET or HEAD on a cacheable route from an anonymous client: look it up.
    case lookup
    /// Forward to the origin, store nothing. `reason` goes into `Cache-Status` as `fwd=`/`detail=`.
    case pass(fwd: String, detail: String)
    /// An unsafe method: forward, store nothing, purge what it touched after a success.
    case write
}

enum RequestClassifier {
    static func classify(_ head: HTTPRequestHead, route: Route) -> RequestClass {
        switch head.method {
        case .GET, .HEAD:
            break
        case .OPTIONS, .PROPFIND, .REPORT, .SEARCH, .RAW(value: "QUERY"):
            // Safe methods (RFC 9110 §9.2.1, RFC 4918, RFC 3253, RFC 5323, the QUERY draft):
            // forwarded, never stored, nothing invalidated.
            return .pass(fwd: "method", detail: "method")
        default:
            // Every other method is unsafe, unknown ones included: a success invalidates
            // (RFC 9111 §4.4).
            return .write
        }
        guard route.cacheable else { return .pass(fwd: "bypass", detail: "route") }
        // A body the key does not describe: forwarded as sent, never stored or shared.
        if head.hasBody { return .pass(fwd: "request", detail: "body") }
        // Credentials and sessions mean a personal answer: never shared (RFC 9111 §3.5).
        if head.headers.contains(name: "authorization") { return .pass(fwd: "request", detail: "authorization") }
        // Unless the route ignores every cookie the request carries (analytics, consent): then
        // it is looked up, and no cookie reaches the origin on the fetch (`forward_headers`
        // never names Cookie).
        if head.headers.contains(name: "cookie") && route.cookies.matters(head.headers["cookie"]) {
            return .pass(fwd: "request", detail: "cookie")
        }
        // A `Range` is looked up like any GET: a stored complete response answers it (206); a miss
        // fetches the whole and answers with it (the origin is never asked for a part).
        return .lookup
    }
}

extension HTTPRequestHead {
    /// Whether a body follows the head (`RequestDecoder` has checked the framing fields: one
    /// `Content-Length` of digits, or `Transfer-Encoding: chunked`).
    var hasBody: Bool {
        headers.contains(name: "transfer-encoding") || headers.first(name: "content-length").map { $0 != "0" } ?? false
    }
}
