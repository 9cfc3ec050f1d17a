import NIOCore
import NIOHTTP1
import VitrineCore
@testable import VitrineProxy

/// What a hit reads from the request: `Accept-Encoding`, `Vary` secondary keys, conditional
/// fields, `Range` and `If-Range`, against a stored response with a gzip copy. A range served is
/// always within the body.
enum AcceptEncodingVaryTarget {
    static let stored: CachedResponse = {
        var headers = HTTPHeaders()
        headers.add(name: "Content-Type", value: "application/json")
        headers.add(name: "ETag", value: "\"abc\"")
        headers.add(name: "Last-Modified", value: "Thu, 01 Jan 2026 00:00:00 GMT")
        let body = ByteBuffer(string: String(repeating: "{\"a\":1}", count: 400))
        return CachedResponse(status: .ok, headers: headers, body: body, initialAge: 0, tags: [], compress: true)
    }()

    static func run(_ bytes: [UInt8]) {
        let lines = fuzzHeaderLines(bytes)
        var headers = HTTPHeaders()
        for (name, value) in lines where !name.isEmpty { headers.add(name: name, value: value) }
        let values = lines.map(\.value)
        let gzip = AcceptEncoding.acceptsGzip(values)
        precondition((AcceptEncoding.normalizedFieldValue(values) == "gzip") == gzip, "normalised value disagrees")
        _ = VaryKey.acceptsGzip(headers)
        let fields = lines.map { $0.name.lowercased() }
        _ = VaryKey.secondaryKey(CacheKey("/p"), fields: fields, headers: headers)
        let language = AcceptLanguage.best(values, offered: ["en", "fr", "de-CH"])
        precondition(["en", "fr", "de-CH"].contains(language), "a language not offered: \(language)")
        _ = stored.isNotModified(for: headers)
        for value in values {
            _ = stored.matches(ifNoneMatch: value)
            _ = stored.rangeApplies(ifRange: value)
            for length in [0, 1, 100] {
                if case .single(let first, let last) = ByteRangeRequest.evaluate([value], length: length) {
                    precondition(first >= 0 && first <= last && last < length, "range \(first)-\(last) outside \(length) bytes")
                }
            }
        }
    }
}
