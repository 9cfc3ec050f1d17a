/// Which of a listener's certificates answers a TLS client hello, by the name the client asked
/// for (SNI, RFC 6066 §3): an exact name first, then a wildcard covering one leftmost label
/// (`*.shop.example` covers `a.shop.example`, not `shop.example` nor `a.b.shop.example`, as
/// RFC 6125 §6.4.3 has clients match it), else the default: the first certificate, as nginx's
/// `default_server` and HAProxy's first `crt` answer a hello without a name or with an unknown one.
///
/// Names are compared without case and without a trailing dot. A name two certificates claim
/// goes to the first. A plain value: built once per certificate set, read by every handshake.
public struct ServerNameTable<Value: Sendable>: Sendable {
    private var exact: [String: Value] = [:]
    private var wildcards: [String: Value] = [:]
    /// What answers a hello without a name, or with one no certificate claims.
    public let defaultValue: Value

    /// - Parameter entries: each certificate's names (DNS names; `*.suffix` for a wildcard) and
    ///   value, in the configured order; the first is the default.
    public init?(_ entries: [(names: [String], value: Value)]) {
        guard let first = entries.first else { return nil }
        defaultValue = first.value
        for (names, value) in entries {
            for name in names {
                let normalized = Self.normalize(name[...])
                if normalized.hasPrefix("*.") {
                    let suffix = String(normalized.dropFirst(2))
                    if !suffix.isEmpty && wildcards[suffix] == nil { wildcards[suffix] = value }
                } else if !normalized.isEmpty && exact[normalized] == nil {
                    exact[normalized] = value
                }
            }
        }
    }

    /// The value for a client hello's server name (nil: the client sent none).
    public func value(for serverName: String?) -> Value {
        serverName.flatMap { match(Self.normalize($0[...])) } ?? defaultValue
    }

    /// Whether some certificate claims `serverName` (by its exact name or a wildcard).
    public func claims(_ serverName: String) -> Bool {
        match(Self.normalize(serverName[...])) != nil
    }

    /// The value claiming `name` (normalised): its exact name, else a wildcard over its first label.
    private func match(_ name: String) -> Value? {
        if let value = exact[name] { return value }
        guard let dot = name.firstIndex(of: "."), dot != name.startIndex else { return nil }
        return wildcards[String(name[name.index(after: dot)...])]
    }

    /// Lower case (ASCII: DNS names are ASCII, IDNs travel as A-labels), no trailing dot.
    static func normalize(_ name: Substring) -> String {
        var name = name
        if name.hasSuffix(".") { name = name.dropLast() }
        return String(decoding: name.utf8.map { $0 >= 0x41 && $0 <= 0x5A ? $0 | 0x20 : $0 }, as: UTF8.self)
    }
}
