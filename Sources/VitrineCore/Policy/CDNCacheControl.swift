import RawStructuredFieldValues

/// `CDN-Cache-Control` (RFC 9213): the cache directives targeted at CDNs, as a Structured Field
/// dictionary (RFC 8941), parsed with swift-http-structured-headers rather than by splitting on
/// commas.
///
/// A field that is not a valid dictionary, or in which a directive this cache acts on has a
/// value of the wrong type (`max-age="60"`, `no-store=1`, a date), is ignored as a whole: the
/// cache then reads `Cache-Control`, as if the field were absent. Unknown directives are
/// ignored one by one. Its `private` and `no-cache` are honoured whatever `Cache-Control` and
/// `Expires` say, since the targeted field takes their place.
public enum CDNCacheControl {
    public static func parse<Values: Sequence<String>>(_ values: Values) -> CacheControl? {
        guard let dictionary = StructuredFieldLines.dictionary(values) else { return nil }
        var directives = CacheControl()
        for (key, member) in dictionary {
            switch key {
            case "max-age":
                guard let seconds = seconds(member) else { return nil }
                directives.maxAge = seconds
            case "s-maxage":
                guard let seconds = seconds(member) else { return nil }
                directives.sharedMaxAge = seconds
            case "stale-while-revalidate":
                guard let seconds = seconds(member) else { return nil }
                directives.staleWhileRevalidate = seconds
            case "stale-if-error":
                guard let seconds = seconds(member) else { return nil }
                directives.staleIfError = seconds
            case "no-store":
                guard let flag = flag(member) else { return nil }
                directives.noStore = flag
            case "public":
                guard let flag = flag(member) else { return nil }
                directives.isPublic = flag
            case "must-revalidate":
                guard let flag = flag(member) else { return nil }
                directives.mustRevalidate = flag
            case "proxy-revalidate":
                guard let flag = flag(member) else { return nil }
                directives.proxyRevalidate = flag
            case "must-understand":
                guard let flag = flag(member) else { return nil }
                directives.mustUnderstand = flag
            // `no-cache` and `private` may name fields (an inner list of strings); a shared
            // cache treats them as the unqualified directive (the safe reading).
            case "no-cache":
                guard let flag = flagOrFields(member) else { return nil }
                directives.noCache = flag
            case "private":
                guard let flag = flagOrFields(member) else { return nil }
                directives.isPrivate = flag
            default:
                continue
            }
        }
        return directives
    }

    /// A non-negative integer, saturating at 2^31 (RFC 9111 §1.2.2).
    private static func seconds(_ member: ItemOrInnerList) -> Int? {
        guard case .item(let item) = member, case .integer(let value) = item.rfc9651BareItem, value >= 0 else { return nil }
        return Int(min(value, Int64(DeltaSeconds.maximum)))
    }

    private static func flag(_ member: ItemOrInnerList) -> Bool? {
        guard case .item(let item) = member, case .bool(let value) = item.rfc9651BareItem else { return nil }
        return value
    }

    private static func flagOrFields(_ member: ItemOrInnerList) -> Bool? {
        if case .innerList(let list) = member {
            // Field names are strings (RFC 9213 §2.1).
            for item in list.bareInnerList {
                guard case .string = item.rfc9651BareItem else { return nil }
            }
            return true
        }
        return flag(member)
    }
}
