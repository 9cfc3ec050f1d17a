/// What a `Range` request field (RFC 9110 §14.2) asks of a stored representation of `length`
/// bytes: one range (answered 206), nothing that can be satisfied (416), or the whole (200).
///
/// One range is served; a request for several is answered with the whole representation, as
/// the RFC allows (no multipart bodies). A field that does not parse is ignored, as the RFC
/// says. Numbers come from clients: read without overflow.
public enum ByteRangeRequest: Sendable, Equatable {
    /// Inclusive offsets, within the representation.
    case single(first: Int, last: Int)
    case unsatisfiable
    case whole

    public static func evaluate<Values: Collection<String>>(_ values: Values, length: Int) -> ByteRangeRequest {
        guard values.count == 1, let value = values.first else { return .whole }
        let text = value[...].trimmingSpaces()
        guard text.count > 6, text.prefix(6).lowercased() == "bytes=" else { return .whole }
        let specs = text.dropFirst(6).split(separator: ",", omittingEmptySubsequences: true).map { $0.trimmingSpaces() }
        guard specs.count == 1, let spec = specs.first, let dash = spec.firstIndex(of: "-") else { return .whole }
        let firstText = spec[..<dash]
        let lastText = spec[spec.index(after: dash)...]
        if firstText.isEmpty {
            // bytes=-N: the last N bytes.
            guard let suffix = digits(lastText) else { return .whole }
            guard suffix > 0, length > 0 else { return .unsatisfiable }
            return .single(first: max(0, length - suffix), last: length - 1)
        }
        guard let first = digits(firstText) else { return .whole }
        var last = length - 1
        if !lastText.isEmpty {
            guard let value = digits(lastText), value >= first else { return .whole }
            last = min(value, length - 1)
        }
        guard first < length else { return .unsatisfiable }
        return .single(first: first, last: last)
    }

    /// 1*DIGIT, saturating far above any length a cache holds.
    private static func digits(_ text: Substring) -> Int? {
        guard !text.isEmpty else { return nil }
        var value = 0
        for byte in text.utf8 {
            guard byte >= UInt8(ascii: "0"), byte <= UInt8(ascii: "9") else { return nil }
            value = min(value * 10 + Int(byte - UInt8(ascii: "0")), 1 << 53)
        }
        return value
    }
}
