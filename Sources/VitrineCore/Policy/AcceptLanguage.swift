/// `Accept-Language` (RFC 9110 §12.5.4) reduced to one of the languages a store sells, so that a
/// response varying on it makes one variant per language sold, not one per spelling browsers
/// send (`en-US,en;q=0.9,fr;q=0.8` and thousands more).
public enum AcceptLanguage {
    /// The first of `offered` the client accepts, in the client's order of preference (q-value,
    /// then position); a range matches a language it equals or is a prefix of at a `-` boundary
    /// (`fr` matches `fr`, `fr-CA` matches `fr`), `*` matches the first offered. Nothing
    /// accepted: the first offered (the store's default language).
    public static func best<Values: Sequence<String>>(_ values: Values, offered: [String]) -> String {
        guard let fallback = offered.first else { return "" }
        var ranges: [(range: Substring, quality: Int, position: Int)] = []
        for value in values {
            for member in value.split(separator: ",") {
                let parts = member.split(separator: ";")
                guard let first = parts.first else { continue }
                let range = first.trimmingSpaces()
                guard !range.isEmpty, range.count <= 64 else { continue }
                var quality = 1000
                for parameter in parts.dropFirst() {
                    let trimmed = parameter.trimmingSpaces()
                    guard trimmed.lowercased().hasPrefix("q=") else { continue }
                    quality = Self.quality(trimmed.dropFirst(2)) ?? 0
                }
                if quality > 0 { ranges.append((range, quality, ranges.count)) }
                if ranges.count >= 32 { break }
            }
        }
        ranges.sort { $0.quality != $1.quality ? $0.quality > $1.quality : $0.position < $1.position }
        for (range, _, _) in ranges {
            if range == "*" { return fallback }
            let lower = range.lowercased()
            for language in offered {
                let offeredLower = language.lowercased()
                if lower == offeredLower || lower.hasPrefix(offeredLower + "-") || offeredLower.hasPrefix(lower + "-") {
                    return language
                }
            }
        }
        return fallback
    }

    /// `qvalue` as thousandths: `0`, `0.5`, `1`, `1.000`; nil for anything else.
    static func quality(_ text: Substring) -> Int? {
        let bytes = Array(text.utf8)
        guard let first = bytes.first, first == UInt8(ascii: "0") || first == UInt8(ascii: "1"), bytes.count <= 5 else { return nil }
        var value = Int(first - UInt8(ascii: "0")) * 1000
        if bytes.count > 1 {
            guard bytes[1] == UInt8(ascii: ".") else { return nil }
            var scale = 100
            for byte in bytes.dropFirst(2) {
                guard byte >= UInt8(ascii: "0"), byte <= UInt8(ascii: "9") else { return nil }
                value += Int(byte - UInt8(ascii: "0")) * scale
                scale /= 10
            }
        }
        return value <= 1000 ? value : nil
    }
}
