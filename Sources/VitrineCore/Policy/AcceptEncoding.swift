/// `Accept-Encoding` (RFC 9110 §12.5.3), reduced to what this cache distinguishes: whether gzip
/// is acceptable. Clients send thousands of spellings (`br`, `zstd`, q-values, `*`); the cache
/// keeps an identity and a gzip representation, so that is the only question asked of them, and
/// the only thing forwarded to an origin (`normalizedFieldValue`).
public enum AcceptEncoding {
    /// Whether any of the field values allows gzip (q > 0), by name, `x-gzip` or `*`.
    public static func acceptsGzip<Values: Sequence<String>>(_ values: Values) -> Bool {
        for value in values {
            for coding in value.split(separator: ",") {
                let parts = coding.split(separator: ";", omittingEmptySubsequences: false)
                guard let first = parts.first else { continue }
                let name = first.trimmingSpaces().lowercased()
                guard name == "gzip" || name == "x-gzip" || name == "*" else { continue }
                if quality(parts.dropFirst()) > 0 { return true }
            }
        }
        return false
    }

    /// What an origin is sent in place of the client's field: `gzip` when the client accepts
    /// it, else nothing (identity). The cache key distinguishes exactly these two.
    public static func normalizedFieldValue<Values: Sequence<String>>(_ values: Values) -> String? {
        acceptsGzip(values) ? "gzip" : nil
    }

    /// The `q` parameter among a coding's parameters (RFC 9110 §12.4.2): 1 when absent, 0 when
    /// malformed (a weight that cannot be read is not an acceptance).
    private static func quality<Parameters: Sequence<Substring>>(_ parameters: Parameters) -> Double {
        for parameter in parameters {
            let trimmed = parameter.trimmingSpaces()
            guard trimmed.count >= 2, trimmed.lowercased().hasPrefix("q=") else { continue }
            guard let weight = Double(trimmed.dropFirst(2)), weight.isFinite, weight >= 0, weight <= 1 else { return 0 }
            return weight
        }
        return 1
    }
}
