import RawStructuredFieldValues

/// Cache groups (RFC 9875): `Cache-Groups` on a response joins it to groups, with the same
/// semantics as our tags; `Cache-Group-Invalidation` on the response to an unsafe request
/// invalidates groups. Both are Structured Field lists of strings: `"a", "b"`.
public enum CacheGroups {
    public static let membershipField = "cache-groups"
    public static let invalidationField = "cache-group-invalidation"

    /// The strings of a Structured Field list (parsed with swift-http-structured-headers, so
    /// escapes and parameters are read as RFC 8941 says); non-string members (tokens, numbers,
    /// inner lists) are ignored, as the RFC requires. A field that is not a valid list names no
    /// group.
    public static func parse<Values: Sequence<String>>(_ values: Values) -> [String] {
        guard let members = StructuredFieldLines.list(values) else { return [] }
        var groups: [String] = []
        var seen = Set<String>()
        for member in members {
            guard case .item(let item) = member, case .string(let name) = item.rfc9651BareItem else { continue }
            if !name.isEmpty && seen.insert(name).inserted { groups.append(name) }
        }
        return groups
    }
}
