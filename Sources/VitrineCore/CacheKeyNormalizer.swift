/// How a route turns a request target into a cache key: query parameters sorted, tracking
/// parameters dropped, and optionally the case-folded host in front. Keys never include request
/// headers; those a response varies on make secondary keys (`Vary`).
public struct CacheKeyNormalizer: Sendable, Equatable {
    /// Sort query parameters by name (stable: repeated names keep their order).
    public var sortQuery: Bool
    /// Parameter names to drop; a trailing `*` matches a prefix (`utm_*`).
    public var dropParameters: [String]
    /// Put the lower-cased host (without a default port) in front of the target.
    public var includeHost: Bool

    public static let trackingParameters = ["utm_*", "gclid", "fbclid", "msclkid", "mc_eid", "_ga"]

    public init(sortQuery: Bool = true, dropParameters: [String] = Self.trackingParameters, includeHost: Bool = false) {
        self.sortQuery = sortQuery
        self.dropParameters = dropParameters
        self.includeHost = includeHost
    }

    /// Leaves targets exactly as they are.
    public static let identity = CacheKeyNormalizer(sortQuery: false, dropParameters: [], includeHost: false)

    public func key(target: String, host: String? = nil) -> CacheKey {
        CacheKey(normalizedTarget(target, host: host))
    }

    public func normalizedTarget(_ target: String, host: String? = nil) -> String {
        var prefix = ""
        if includeHost, let host { prefix = Self.normalizedHost(host) }
        let bytes = target.utf8
        guard sortQuery || !dropParameters.isEmpty, let question = bytes.firstIndex(of: UInt8(ascii: "?")) else {
            return prefix.isEmpty ? target : prefix + target
        }
        // Work on bytes: Character comparison and sorting cost microseconds per key.
        var parameters: [Substring.UTF8View] = []
        var changed = false
        var previousName: Substring.UTF8View?
        for parameter in target[target.utf8.index(after: question)...].utf8.split(separator: UInt8(ascii: "&")) {
            let name = parameter.prefix { $0 != UInt8(ascii: "=") }
            if dropParameters.contains(where: { Self.matches(name, $0) }) {
                changed = true
                continue
            }
            if sortQuery, let previousName, name.lexicographicallyPrecedes(previousName) { changed = true }
            previousName = name
            parameters.append(parameter)
        }
        // The common case, a target already in order with nothing to drop: no new string.
        if !changed && !target.utf8.last.map({ $0 == UInt8(ascii: "?") || $0 == UInt8(ascii: "&") })! {
            return prefix.isEmpty ? target : prefix + target
        }
        if sortQuery {
            parameters = parameters.enumerated().sorted { lhs, rhs in
                let left = lhs.element.prefix { $0 != UInt8(ascii: "=") }
                let right = rhs.element.prefix { $0 != UInt8(ascii: "=") }
                if left.elementsEqual(right) { return lhs.offset < rhs.offset }
                return left.lexicographicallyPrecedes(right)
            }.map(\.element)
        }
        var result = prefix
        result += target[..<question]
        for (index, parameter) in parameters.enumerated() {
            result += index == 0 ? "?" : "&"
            result += Substring(parameter)
        }
        return result
    }

    /// A `Host` value as keys hold it (and as the origin is sent it): lower-cased, without the
    /// default port.
    public static func normalizedHost(_ host: String) -> String {
        var normalized = host.lowercased()
        if normalized.hasSuffix(":80") { normalized.removeLast(3) }
        return normalized
    }

    /// Whether a parameter name matches a pattern (`utm_*` matches by prefix).
    private static func matches(_ name: Substring.UTF8View, _ pattern: String) -> Bool {
        if pattern.utf8.last == UInt8(ascii: "*") {
            return name.starts(with: pattern.utf8.dropLast())
        }
        return name.elementsEqual(pattern.utf8)
    }
}
