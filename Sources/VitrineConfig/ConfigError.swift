/// A configuration problem, naming the key it concerns (e.g. `routes[1].origin`).
public struct ConfigError: Error, CustomStringConvertible, Equatable, Sendable {
    /// The dotted path of the offending key; `(file)` for problems with the file as a whole.
    public let key: String
    public let problem: String

    public init(key: String, _ problem: String) {
        self.key = key
        self.problem = problem
    }

    public var description: String { "config key '\(key)': \(problem)" }
}

/// A coding path as written in the YAML file: `routes[1].default_ttl`.
func keyPath(_ path: [any CodingKey]) -> String {
    var text = ""
    for key in path {
        if let index = key.intValue {
            text += "[\(index)]"
        } else {
            text += text.isEmpty ? key.stringValue : ".\(key.stringValue)"
        }
    }
    return text.isEmpty ? "(root)" : text
}

struct AnyCodingKey: CodingKey {
    let stringValue: String
    let intValue: Int?
    init(stringValue: String) { self.stringValue = stringValue; self.intValue = nil }
    init(intValue: Int) { self.stringValue = String(intValue); self.intValue = intValue }
}
