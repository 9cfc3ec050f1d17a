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
        if !includeHost && (!target.utf8.contains(UInt8(ascii: "?")) || (!sortQuery && dropParameters.isEmpty)) {
            return target
        }
        var result = ""
        if includeHost, let host {
            var folded = host.lowercased()
            if folded.hasSuffix(":80") { folded.removeLast(3) }
            result = folded
        }
        guard let question = target.firstIndex(of: "?"), sortQuery || !dropParameters.isEmpty else {
            return result + target
        }
        result += target[..<question]
        var parameters = target[target.index(after: question)...].split(separator: "&", omittingEmptySubsequences: true)
        if !dropParameters.isEmpty {
            parameters.removeAll { parameter in
                let name = parameter.prefix { $0 != "=" }
                return dropParameters.contains { pattern in
                    pattern.hasSuffix("*") ? name.hasPrefix(pattern.dropLast()) : name == pattern
                }
            }
        }
        if sortQuery {
            parameters = parameters.enumerated().sorted { lhs, rhs in
                let left = lhs.element.prefix { $0 != "=" }
                let right = rhs.element.prefix { $0 != "=" }
                return left == right ? lhs.offset < rhs.offset : left < right
            }.map(\.element)
        }
        if !parameters.isEmpty { result += "?" + parameters.joined(separator: "&") }
        return result
    }
}
