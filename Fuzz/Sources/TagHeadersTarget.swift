import NIOHTTP1
import VitrineCore
@testable import VitrineProxy

/// Tag fields from origins (`Surrogate-Key`, `Cache-Tag`, `xkey`, `Cache-Groups`) and the sorting
/// of an origin's fields into visible, targeted and tags.
enum TagHeadersTarget {
    static func run(_ bytes: [UInt8]) {
        let lines = fuzzHeaderLines(bytes)
        let values = lines.map(\.value)
        let tags = SurrogateKeys.parse(values)
        precondition(Set(tags).count == tags.count, "duplicate tags")
        precondition(!tags.contains(where: \.isEmpty), "an empty tag")
        let groups = CacheGroups.parse(values)
        precondition(Set(groups).count == groups.count, "duplicate groups")
        var headers = HTTPHeaders()
        for (name, value) in lines where !name.isEmpty { headers.add(name: name, value: value) }
        let fields = OriginFields(headers)
        precondition(!fields.visible.contains(name: "surrogate-key"), "a tag field shown to clients")
    }
}
