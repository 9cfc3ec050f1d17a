/// A listing's URL (or tag) with named holes: `/catalog/categories/{category}/products?sort={sort}`.
public struct ListingTemplate: Sendable, Equatable {
    private enum Piece: Sendable, Equatable {
        case text(String)
        case parameter(String)
    }

    public let text: String
    private let pieces: [Piece]

    /// The parameter names, in order of first appearance.
    public var parameters: [String] {
        var seen: [String] = []
        for case .parameter(let name) in pieces where !seen.contains(name) { seen.append(name) }
        return seen
    }

    /// Parses `text`; nil when a brace is unbalanced or a name is empty.
    public init?(_ text: String) {
        var pieces: [Piece] = []
        var literal = ""
        var name: String?
        for character in text {
            switch (character, name) {
            case ("{", nil):
                if !literal.isEmpty { pieces.append(.text(literal)) }
                literal = ""
                name = ""
            case ("}", let current?):
                guard !current.isEmpty else { return nil }
                pieces.append(.parameter(current))
                name = nil
            case ("{", _), ("}", nil):
                return nil
            case (_, let current?):
                guard character.isLetter || character.isNumber || character == "_" else { return nil }
                name = current + String(character)
            case (_, nil):
                literal.append(character)
            }
        }
        guard name == nil else { return nil }
        if !literal.isEmpty { pieces.append(.text(literal)) }
        self.text = text
        self.pieces = pieces
    }

    /// The template with every parameter replaced by its value in `values`; with
    /// `percentEncoded`, every byte of a value but RFC 3986's unreserved ones is percent-encoded.
    /// Values come from an origin's index (a JSON list): in a request target they must stay one
    /// path segment or query value, never a `/`, `?`, `&`, space or CR LF of their own.
    public func render(_ values: [String: String], percentEncoded: Bool = false) -> String {
        pieces.map { piece in
            switch piece {
            case .text(let text): return text
            case .parameter(let name):
                let value = values[name] ?? ""
                return percentEncoded ? Self.percentEncoded(value) : value
            }
        }.joined()
    }

    static func percentEncoded(_ value: String) -> String {
        var result = ""
        result.reserveCapacity(value.utf8.count)
        for byte in value.utf8 {
            switch byte {
            case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "0")...UInt8(ascii: "9"),
                UInt8(ascii: "-"), UInt8(ascii: "."), UInt8(ascii: "_"), UInt8(ascii: "~"):
                result.unicodeScalars.append(UnicodeScalar(byte))
            default:
                let hex = Array("0123456789ABCDEF".utf8)
                result.unicodeScalars.append("%")
                result.unicodeScalars.append(UnicodeScalar(hex[Int(byte >> 4)]))
                result.unicodeScalars.append(UnicodeScalar(hex[Int(byte & 0x0F)]))
            }
        }
        return result
    }

    /// Every combination of the parameters' values, the first parameter varying slowest.
    public static func combinations(_ domains: [(name: String, values: [String])]) -> [[String: String]] {
        domains.reduce([[:]]) { partial, domain in
            partial.flatMap { bound in
                domain.values.map { value in bound.merging([domain.name: value]) { _, new in new } }
            }
        }
    }
}
