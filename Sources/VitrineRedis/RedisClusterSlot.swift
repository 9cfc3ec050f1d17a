/// Where Redis Cluster keeps a key: one of 16,384 hash slots, the CRC16 (XMODEM) of the key, or
/// of its hash tag (the part between the first `{` and the next `}`, when not empty), so that
/// keys sharing a tag share a slot (https://redis.io/docs/reference/cluster-spec/).
public enum RedisClusterSlot {
    public static let count = 16_384

    /// The slot of `key`.
    public static func slot<Bytes: Collection>(of key: Bytes) -> Int where Bytes.Element == UInt8 {
        Array(key).withUnsafeBufferPointer { slot(ofBytes: $0) }
    }

    /// The slot of `key`, read in place (this is on every command's path).
    public static func slot(of key: String) -> Int {
        slot(of: key[...])
    }

    /// The slot of `key`, read in place.
    public static func slot(of key: Substring) -> Int {
        var key = key
        return key.withUTF8 { slot(ofBytes: $0) }
    }

    /// The slot of the key in `bytes`.
    public static func slot(ofBytes bytes: UnsafeBufferPointer<UInt8>) -> Int {
        if let open = bytes.firstIndex(of: UInt8(ascii: "{")),
            let close = bytes[(open + 1)...].firstIndex(of: UInt8(ascii: "}")), close > open + 1
        {
            return Int(crc16(bytes[(open + 1)..<close]) & 0x3FFF)
        }
        return Int(crc16(bytes[...]) & 0x3FFF)
    }

    /// For each slot, a hash tag that puts a key in it: `prefix` and three characters of
    /// `[0-9A-Za-z_-]` (no brace), the first combination that lands there. Computed by stepping the
    /// CRC a character at a time (262,144 combinations at most, a few milliseconds).
    public static func tagsForEverySlot(prefix: String) -> [String] {
        let alphabet = Array("0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz_-".utf8)
        let start = prefix.utf8.reduce(UInt16(0), step)
        var found = [String?](repeating: nil, count: count)
        var missing = count
        search: for a in alphabet {
            let afterA = step(start, a)
            for b in alphabet {
                let afterB = step(afterA, b)
                for c in alphabet {
                    let slot = Int(step(afterB, c) & 0x3FFF)
                    guard found[slot] == nil else { continue }
                    found[slot] = prefix + String(decoding: [a, b, c], as: UTF8.self)
                    missing -= 1
                    if missing == 0 { break search }
                }
            }
        }
        // Every slot is reached long before the combinations run out (checked in the tests).
        return found.map { $0 ?? prefix }
    }

    /// CRC16-CCITT (XMODEM): polynomial 0x1021, initial value 0, as Redis computes it.
    static func crc16(_ bytes: Slice<UnsafeBufferPointer<UInt8>>) -> UInt16 {
        bytes.reduce(0, step)
    }

    /// The CRC after one more byte.
    static func step(_ crc: UInt16, _ byte: UInt8) -> UInt16 {
        (crc << 8) ^ table[Int(UInt8(truncatingIfNeeded: crc >> 8) ^ byte)]
    }

    static let table: [UInt16] = (0..<256).map { index in
        var crc = UInt16(index) << 8
        for _ in 0..<8 { crc = crc & 0x8000 != 0 ? (crc << 1) ^ 0x1021 : crc << 1 }
        return crc
    }
}

/// A cluster's redirection of a command (`-MOVED 3999 10.0.0.2:6381`, `-ASK 3999 10.0.0.2:6381`):
/// the slot lives elsewhere now (MOVED: refresh the map) or for this command only, during a
/// migration (ASK: send `ASKING` first, do not change the map).
public struct RedisClusterRedirect: Sendable, Equatable {
    public enum Kind: Sendable, Equatable { case moved, ask }
    public let kind: Kind
    public let slot: Int
    /// The node's host as announced; empty when the node did not announce one (then the host of
    /// the node that answered).
    public let host: String
    public let port: Int

    public init(kind: Kind, slot: Int, host: String, port: Int) {
        self.kind = kind
        self.slot = slot
        self.host = host
        self.port = port
    }

    /// Parses an error reply's text; nil when it is not a redirect (or not a well-formed one).
    public init?(error text: String) {
        let parts = text.split(separator: " ", omittingEmptySubsequences: true)
        guard parts.count == 3 else { return nil }
        switch parts[0] {
        case "MOVED": kind = .moved
        case "ASK": kind = .ask
        default: return nil
        }
        guard parts[1].utf8.count <= 5, let slot = Int(parts[1]), slot >= 0, slot < RedisClusterSlot.count else { return nil }
        // The port follows the last colon (an IPv6 host has colons of its own).
        let endpoint = parts[2]
        guard let colon = endpoint.lastIndex(of: ":") else { return nil }
        let portText = endpoint[endpoint.index(after: colon)...]
        guard portText.utf8.count <= 5, let port = Int(portText), port > 0, port <= 65_535 else { return nil }
        var host = String(endpoint[..<colon])
        if host.hasPrefix("["), host.hasSuffix("]"), host.count >= 2 { host = String(host.dropFirst().dropLast()) }
        self.slot = slot
        self.host = host
        self.port = port
    }
}
