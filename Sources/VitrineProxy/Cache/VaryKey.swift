import NIOHTTP1
import VitrineCore

/// Secondary cache keys (RFC 9111 §4.1): a response that varies on request fields is stored under
/// its primary key plus the normalised values of those fields. The primary key holds a marker
/// naming the fields, so a lookup knows which secondary key to build.
enum VaryKey {
    /// The tag every variant carries, so that purging the primary key purges all variants.
    static func primaryTag(_ key: CacheKey) -> String { "vitrine-key:" + primaryPart(of: key) }

    /// The key of what is fetched over https for `key`: a variant of the URL's key (the scheme
    /// is what the origin was told, in `X-Forwarded-Proto`), stored beside the http one, in the
    /// shared tier's same slot, and purged with the URL.
    static func httpsKey(_ key: CacheKey) -> CacheKey {
        CacheKey(key.value + String(UnicodeScalar(separator)) + "https")
    }

    /// Whether `key` is not a URL's own key: a variant, or an https key.
    static func isVariant(_ key: CacheKey) -> Bool { key.value.utf8.contains(separator) }

    /// The normalised value of `field` in `headers`. `Accept-Encoding` reduces to whether gzip
    /// is acceptable, so the thousands of spellings browsers send make two variants, not thousands;
    /// `Accept-Language`, on a route that names the languages it sells, to one of them.
    static func normalizedValue(_ field: String, in headers: HTTPHeaders, languages: [String]? = nil) -> String {
        if field == "accept-encoding" { return acceptsGzip(headers) ? "gzip" : "identity" }
        if field == "accept-language", let languages { return AcceptLanguage.best(headers["accept-language"], offered: languages) }
        return headers[field].map { $0.split(whereSeparator: { $0 == " " || $0 == "\t" }).joined(separator: " ") }
            .joined(separator: ",")
    }

    /// What separates a secondary key's primary key from its variant (a control character, which
    /// a normalised request target never holds).
    static let separator: UInt8 = 0x1F

    /// The secondary key for a request, given the fields the stored response varies on.
    static func secondaryKey(_ primary: CacheKey, fields: [String], headers: HTTPHeaders, languages: [String]? = nil) -> CacheKey {
        CacheKey(primary.value + String(UnicodeScalar(separator)) + variantID(fields: fields, headers: headers, languages: languages))
    }

    /// The primary key of `key` (itself, for a primary key).
    static func primaryPart(of key: CacheKey) -> Substring {
        guard let end = key.value.utf8.firstIndex(of: separator) else { return key.value[...] }
        return key.value[..<end]
    }

    static func variantID(fields: [String], headers: HTTPHeaders, languages: [String]? = nil) -> String {
        fields.map { "\($0)=\(normalizedValue($0, in: headers, languages: languages))" }.joined(separator: "\u{1E}")
    }

    /// Whether the request's `Accept-Encoding` allows gzip (q > 0).
    static func acceptsGzip(_ headers: HTTPHeaders) -> Bool {
        AcceptEncoding.acceptsGzip(headers["accept-encoding"])
    }
}
