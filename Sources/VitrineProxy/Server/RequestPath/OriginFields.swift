import NIOHTTP1
import VitrineCore

/// An origin response's header fields, sorted: what a client may see, the tags the response
/// names (surrogate keys and cache groups), and the cache-control fields targeted at this cache.
/// Hop-by-hop fields are dropped.
struct OriginFields {
    var visible = HTTPHeaders()
    var tags: [String] = []
    var targeted: [(name: String, value: String)] = []

    init(_ headers: HTTPHeaders) {
        let tokens = HopByHop.connectionTokens(headers)
        var tagValues: [String] = []
        // An upstream cache's Cache-Status entries are kept (ours is appended after them) only
        // when they are a valid list: appended to, an invalid one would spoil ours too.
        let upstreamStatusIsValid = !headers.contains(name: "cache-status") || CacheStatusField.isValid(headers["cache-status"])
        for (name, value) in headers {
            let lower = name.lowercased()
            if HopByHop.isHopByHop(lowercased: lower, connectionTokens: tokens) { continue }
            if lower == "cache-status" && !upstreamStatusIsValid { continue }
            if ResponseCachePolicy.targetedFields.contains(lower) {
                targeted.append((name, value))
            } else if SurrogateKeys.headerNames.contains(lower) {
                tagValues.append(value)
            } else {
                visible.add(name: name, value: value)
            }
        }
        tags = SurrogateKeys.parse(tagValues)
        let groups = CacheGroups.parse(headers[CacheGroups.membershipField])
        if !groups.isEmpty {
            var seen = Set(tags)
            for group in groups where seen.insert(group).inserted { tags.append(group) }
        }
    }
}
