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

    /// The template with every parameter replaced by its value in `values`.
    public func render(_ values: [String: String]) -> String {
        pieces.map { piece in
            switch piece {
            case .text(let text): return text
            case .parameter(let name): return values[name] ?? ""
            }
        }.joined()
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
