/// The directives of `Cache-Control` (RFC 9111 §5.2) that a shared cache acts on.
public struct CacheControl: Sendable, Equatable {
    public var maxAge: Int?
    public var sharedMaxAge: Int?
    public var noStore = false
    public var noCache = false
    public var isPrivate = false
    public var isPublic = false
    public var mustRevalidate = false
    public var proxyRevalidate = false
    public var staleWhileRevalidate: Int?
    public var staleIfError: Int?
    /// `must-understand` (RFC 9111 §5.2.2.3): store only a status this cache understands, and
    /// then `no-store` does not apply.
    public var mustUnderstand = false

    public init() {}

    /// Parses every `Cache-Control` field value given (a header may repeat).
    /// Unknown directives are ignored; a malformed delta-seconds counts as absent, except
    /// for `max-age`/`s-maxage`, where it counts as 0 (stale), as RFC 9111 §4.2.1 advises.
    /// Values past 2^31 are 2^31 (§1.2.2).
    public init<Values: Sequence<String>>(parsing values: Values) {
        for value in values {
            for rawDirective in value.split(separator: ",") {
                let directive = rawDirective.trimmingSpaces()
                guard !directive.isEmpty else { continue }
                let name: Substring
                let argument: Substring?
                if let equals = directive.firstIndex(of: "=") {
                    name = directive[..<equals].trimmingSpaces()
                    argument = directive[directive.index(after: equals)...].trimmingSpaces().trimmingQuotes()
                } else {
                    name = directive
                    argument = nil
                }
                switch name.lowercased() {
                case "max-age": maxAge = argument.flatMap(DeltaSeconds.parse) ?? 0
                case "s-maxage": sharedMaxAge = argument.flatMap(DeltaSeconds.parse) ?? 0
                case "no-store": noStore = true
                // `no-cache="field"` and `private="field"` name fields; a shared cache treats
                // them as the unqualified directive (the safe reading).
                case "no-cache": noCache = true
                case "private": isPrivate = true
                case "public": isPublic = true
                case "must-revalidate": mustRevalidate = true
                case "proxy-revalidate": proxyRevalidate = true
                case "stale-while-revalidate": staleWhileRevalidate = argument.flatMap(DeltaSeconds.parse)
                case "stale-if-error": staleIfError = argument.flatMap(DeltaSeconds.parse)
                case "must-understand": mustUnderstand = true
                default: continue
                }
            }
        }
    }
}

extension Substring {
    func trimmingSpaces() -> Substring {
        var result = self
        while let first = result.first, first == " " || first == "\t" { result.removeFirst() }
        while let last = result.last, last == " " || last == "\t" { result.removeLast() }
        return result
    }

    func trimmingQuotes() -> Substring {
        if count >= 2, first == "\"", last == "\"" { return dropFirst().dropLast() }
        return self
    }
}
