import NIOCore
import NIOHTTP1
import VitrineCore

/// One answered request, as the access log and the request metrics see it. Filled in as the
/// request goes (its route, what was delivered, how long the origin took) and observed once,
/// when its answer is written or abandoned.
struct RequestRecord {
    let started: NIODeadline
    let head: HTTPRequestHead
    let forwarding: ClientForwarding
    /// The request's id: a trusted proxy's `X-Request-Id`, else this node's own.
    let requestID: String
    /// Bytes the connection had written when the request arrived.
    let bytesBefore: Int
    /// The route's prefix (`-` when none matched).
    var route = "-"
    var status = 0
    /// What the cache did (nil: the proxy answered itself, an error).
    var result: CacheResult?
    /// From the fetch's start to the origin's response head.
    var originNanoseconds: Int64?

    /// Whether a trusted proxy's `X-Request-Id` is kept as this request's id: 1 to 128 visible
    /// ASCII characters (it goes into logs and an origin's request).
    static func isAcceptableID(_ value: String) -> Bool {
        let utf8 = value.utf8
        return !utf8.isEmpty && utf8.count <= 128 && utf8.allSatisfy { $0 > 0x20 && $0 < 0x7F && $0 != UInt8(ascii: "\"") }
    }
}

/// How a request's method is counted: a read the cache may answer, a write, or anything else.
enum MethodClass: String, Sendable, CaseIterable {
    case read, write, other

    init(_ method: HTTPMethod) {
        switch method {
        case .GET, .HEAD: self = .read
        case .POST, .PUT, .PATCH, .DELETE: self = .write
        default: self = .other
        }
    }
}
