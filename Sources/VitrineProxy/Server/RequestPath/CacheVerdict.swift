import NIOCore

/// What an answer tells the client about the cache: `X-Cache` and `Cache-Status` (RFC 9211).
/// Every answer the pipeline or a fetch delivers carries one, and this is the one place both
/// fields are written.
public struct CacheVerdict: Sendable {
    /// The `X-Cache` value.
    public let result: CacheResult
    private let status: Status

    private enum Status: Sendable {
        /// `hit; ttl=N`, and `; detail=D` for a hit from L2 or another request's fetch: the
        /// common hits, written without building a string.
        case hit(ttl: Int, detail: StaticString?)
        /// Anything else, as written after `vitrine; `.
        case text(String)
    }

    /// A fresh hit in L1.
    public static func hit(ttl: Int) -> CacheVerdict { CacheVerdict(result: .hit, status: .hit(ttl: ttl, detail: nil)) }

    /// A hit from somewhere else than L1: `l2`, `collapsed` (another request's fetch).
    static func hit(ttl: Int, detail: StaticString) -> CacheVerdict {
        CacheVerdict(result: .hit, status: .hit(ttl: ttl, detail: detail))
    }

    /// A precomputed listing page.
    static let listing = CacheVerdict(result: .hit, status: .text("hit; detail=listing"))

    /// A stale entry served, and why (`stale-while-revalidate`, `stale-if-error`, `stale-while-leased`).
    static func stale(ttl: Int, detail: String) -> CacheVerdict {
        CacheVerdict(result: .stale, status: .text("hit; ttl=\(ttl); detail=\(detail)"))
    }

    /// A stale entry the origin confirmed with a 304.
    static func revalidated(stored: Bool) -> CacheVerdict {
        CacheVerdict(result: .hit, status: .text("fwd=stale; fwd-status=304\(stored ? "; stored" : "")"))
    }

    /// A response fetched for a cacheable request (`fwd`: `miss`, or `stale` when one was held):
    /// stored, or not and why.
    static func fetched(fwd: String, storedOrDetail: FetchedStorage) -> CacheVerdict {
        switch storedOrDetail {
        case .stored: return CacheVerdict(result: .miss, status: .text("fwd=\(fwd); stored"))
        case .notStored(let detail): return CacheVerdict(result: .miss, status: .text("fwd=\(fwd); detail=\(detail)"))
        }
    }

    enum FetchedStorage: Sendable {
        case stored
        case notStored(String)
    }

    /// A request the cache does not answer (`fwd`: why it went forward; `detail`: what about it).
    static func pass(fwd: String, detail: String?) -> CacheVerdict {
        CacheVerdict(result: .pass, status: .text(detail.map { "fwd=\(fwd); detail=\($0)" } ?? "fwd=\(fwd)"))
    }

    /// The `Cache-Status` value, as a field of its own (HTTP/2).
    public var cacheStatus: String {
        switch status {
        case .hit(let ttl, let detail):
            return detail.map { "vitrine; hit; ttl=\(ttl); detail=\($0)" } ?? "vitrine; hit; ttl=\(ttl)"
        case .text(let text):
            return "vitrine; " + text
        }
    }

    /// Writes `Cache-Status` and `X-Cache`.
    public func write(into buffer: inout ByteBuffer) {
        switch status {
        case .hit(let ttl, let detail):
            buffer.writeStaticString("Cache-Status: vitrine; hit; ttl=")
            buffer.writeDecimal(ttl)
            if let detail {
                buffer.writeStaticString("; detail=")
                buffer.writeStaticString(detail)
            }
            buffer.writeStaticString("\r\n")
        case .text(let text):
            buffer.writeStaticString("Cache-Status: vitrine; ")
            buffer.writeString(text)
            buffer.writeStaticString("\r\n")
        }
        buffer.writeStaticString(result.headerLine)
    }
}
