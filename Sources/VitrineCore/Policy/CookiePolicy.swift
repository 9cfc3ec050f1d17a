/// Whether a request's cookies matter to what a route answers.
///
/// Browsers send analytics and consent cookies (`_ga`, `_gid`, `OptanonConsent`) with every
/// request; if any cookie made a request personal, a storefront's catalog would never be a hit.
/// A route says which cookies it ignores; a request whose cookies are all ignored is looked up
/// like one without cookies, and none of its cookies reaches the origin on a fetch whose answer
/// may be stored (so that answer cannot depend on them).
public enum CookiePolicy: Sendable, Equatable {
    /// Any cookie makes the request personal: it is passed (the default).
    case pass
    /// Cookies never matter on this route (a public catalog): always looked up.
    case ignoreAll
    /// These cookies are ignored: names, or prefixes ending in `*` (`_ga*`). Any other makes the
    /// request personal.
    case ignore([String])

    /// Whether the request, with these `Cookie` field values, carries a cookie that matters.
    public func matters<Values: Sequence<String>>(_ values: Values) -> Bool {
        switch self {
        case .pass:
            return values.contains { value in value.utf8.contains { $0 != 0x20 && $0 != 0x09 && $0 != UInt8(ascii: ";") } }
        case .ignoreAll:
            return false
        case .ignore(let patterns):
            for value in values {
                for pair in value.split(separator: ";") {
                    let trimmed = pair.trimmingSpaces()
                    guard !trimmed.isEmpty else { continue }
                    let name = trimmed.prefix { $0 != "=" }.trimmingSpaces()
                    if !Self.matches(name, patterns) { return true }
                }
            }
            return false
        }
    }

    static func matches(_ name: Substring, _ patterns: [String]) -> Bool {
        patterns.contains { pattern in
            pattern.hasSuffix("*") ? name.hasPrefix(pattern.dropLast()) : name == pattern
        }
    }
}
