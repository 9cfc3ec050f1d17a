/// The tag headers origins use to label what a response shows: Fastly's `Surrogate-Key`,
/// Cloudflare's `Cache-Tag` and Varnish xkey's `xkey`. They are read by the cache and never
/// shown to clients.
public enum SurrogateKeys {
    /// Lower-case names of the tag header fields.
    public static let headerNames: Set<String> = ["surrogate-key", "cache-tag", "xkey"]

    public static func isTagHeader(_ name: String) -> Bool {
        headerNames.contains(where: { name.caseInsensitiveEquals($0) })
    }

    /// Splits tag header values on spaces and commas; drops empties and duplicates, keeping the
    /// first occurrence's order.
    public static func parse<Values: Sequence<String>>(_ values: Values) -> [String] {
        var seen = Set<Substring>()
        var tags: [String] = []
        for value in values {
            for tag in value.split(whereSeparator: { $0 == " " || $0 == "," || $0 == "\t" }) where seen.insert(tag).inserted {
                tags.append(String(tag))
            }
        }
        return tags
    }
}
