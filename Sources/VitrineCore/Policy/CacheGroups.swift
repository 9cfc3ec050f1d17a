/// Cache groups (RFC 9875): `Cache-Groups` on a response joins it to groups, with the same
/// semantics as our tags; `Cache-Group-Invalidation` on the response to an unsafe request
/// invalidates groups. Both are Structured Field lists of strings: `"a", "b"`.
public enum CacheGroups {
    public static let membershipField = "cache-groups"
    public static let invalidationField = "cache-group-invalidation"

    /// The strings of a Structured Field list; non-string members (tokens, numbers) are ignored,
    /// as the RFC requires.
    public static func parse<Values: Sequence<String>>(_ values: Values) -> [String] {
        var groups: [String] = []
        var seen = Set<String>()  // a linear search per member would be quadratic in a long field
        for value in values {
            for member in value.split(separator: ",") {
                let item = member.trimmingSpaces()
                // Parameters (`;a=b`) after the string are allowed and ignored.
                guard item.first == "\"", let close = item.dropFirst().firstIndex(of: "\"") else { continue }
                let name = String(item[item.index(after: item.startIndex)..<close])
                if !name.isEmpty && seen.insert(name).inserted { groups.append(name) }
            }
        }
        return groups
    }
}
