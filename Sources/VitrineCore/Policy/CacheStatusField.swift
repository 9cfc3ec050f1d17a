/// `Cache-Status` (RFC 9211): a Structured Field list (RFC 8941) to which each cache on the way
/// appends its own member. Read with swift-http-structured-headers.
public enum CacheStatusField {
    /// Whether `values` (the field's lines, in order) make a valid list: an upstream cache's
    /// entries that do not would make the field invalid once this cache appends its own, so
    /// they are dropped rather than passed on.
    public static func isValid<Values: Sequence<String>>(_ values: Values) -> Bool {
        StructuredFieldLines.list(values) != nil
    }
}
