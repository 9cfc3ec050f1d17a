/// An IPv4 or IPv6 address, parsed from text a client or a file may have written (so it never
/// traps). IPv4 addresses are held as IPv4-mapped IPv6 (`::ffff:a.b.c.d`) so that one block
/// matches either spelling.
public struct IPAddress: Sendable, Hashable, CustomStringConvertible {
    /// The 16 bytes, network order.
    public let bytes: [UInt8]

    /// Whether this is an IPv4 address (or IPv4-mapped).
    public var isIPv4: Bool { bytes[0..<10].allSatisfy { $0 == 0 } && bytes[10] == 0xff && bytes[11] == 0xff }

    public init(ipv4 octets: (UInt8, UInt8, UInt8, UInt8)) {
        bytes = [0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xff, 0xff, octets.0, octets.1, octets.2, octets.3]
    }

    /// From exactly 16 bytes (the callers' own arithmetic guarantees it).
    init(sixteenBytes: [UInt8]) {
        assert(sixteenBytes.count == 16)
        bytes = sixteenBytes
    }

    /// From 4 (IPv4) or 16 (IPv6) bytes in network order; nil for any other count.
    public init?<Bytes: Collection>(networkBytes: Bytes) where Bytes.Element == UInt8 {
        let array = Array(networkBytes)
        switch array.count {
        case 4: self.init(ipv4: (array[0], array[1], array[2], array[3]))
        case 16: self.init(sixteenBytes: array)
        default: return nil
        }
    }

    /// Dotted-quad IPv4 (`192.0.2.1`) or IPv6 text (`2001:db8::1`, `::ffff:192.0.2.1`), with
    /// an optional `[...]` around IPv6 and no zone. Nil for anything else.
    public init?(parsing text: some StringProtocol) {
        var utf8 = Array(text.utf8)
        if utf8.first == UInt8(ascii: "["), utf8.last == UInt8(ascii: "]"), utf8.count >= 2 {
            utf8 = Array(utf8[1..<(utf8.count - 1)])
        }
        guard !utf8.isEmpty, utf8.count <= 45 else { return nil }
        if !utf8.contains(UInt8(ascii: ":")) {
            guard let octets = Self.parseIPv4(utf8[...]) else { return nil }
            self.init(ipv4: (octets[0], octets[1], octets[2], octets[3]))
            return
        }
        guard let parsed = Self.parseIPv6(utf8) else { return nil }
        self.init(sixteenBytes: parsed)
    }

    public var description: String {
        if isIPv4 { return "\(bytes[12]).\(bytes[13]).\(bytes[14]).\(bytes[15])" }
        var groups: [UInt16] = []
        for index in stride(from: 0, to: 16, by: 2) { groups.append(UInt16(bytes[index]) << 8 | UInt16(bytes[index + 1])) }
        // The longest run of two or more zero groups is written `::` (RFC 5952).
        var bestStart = -1
        var bestLength = 0
        var index = 0
        while index < 8 {
            guard groups[index] == 0 else {
                index += 1
                continue
            }
            var end = index
            while end < 8 && groups[end] == 0 { end += 1 }
            if end - index > bestLength && end - index >= 2 { (bestStart, bestLength) = (index, end - index) }
            index = end
        }
        func hex(_ range: Range<Int>) -> String { range.map { String(groups[$0], radix: 16) }.joined(separator: ":") }
        guard bestStart >= 0 else { return hex(0..<8) }
        return hex(0..<bestStart) + "::" + hex((bestStart + bestLength)..<8)
    }

    private static func parseIPv4(_ text: ArraySlice<UInt8>) -> [UInt8]? {
        var octets: [UInt8] = []
        var value = 0
        var digits = 0
        for byte in text {
            if byte == UInt8(ascii: ".") {
                guard digits > 0, octets.count < 3 else { return nil }
                octets.append(UInt8(value))
                (value, digits) = (0, 0)
            } else if byte >= UInt8(ascii: "0") && byte <= UInt8(ascii: "9") {
                // No leading zeros: `010` is octal to some parsers and decimal to others.
                if digits == 1 && value == 0 { return nil }
                value = value * 10 + Int(byte - UInt8(ascii: "0"))
                digits += 1
                guard digits <= 3, value <= 255 else { return nil }
            } else {
                return nil
            }
        }
        guard digits > 0, octets.count == 3 else { return nil }
        octets.append(UInt8(value))
        return octets
    }

    private static func parseIPv6(_ text: [UInt8]) -> [UInt8]? {
        // Split at `::` (at most once) into the groups before and after it.
        var head: [UInt16] = []
        var tail: [UInt16] = []
        var sawGap = false
        var index = 0
        var current: [UInt8] = []
        var embeddedIPv4: [UInt8]?
        func flush() -> Bool {
            guard !current.isEmpty else { return true }
            guard current.count <= 4 else { return false }
            var value: UInt16 = 0
            for byte in current {
                guard let digit = hexValue(byte) else { return false }
                value = value << 4 | UInt16(digit)
            }
            if sawGap { tail.append(value) } else { head.append(value) }
            current.removeAll()
            return true
        }
        if text.starts(with: [UInt8(ascii: ":"), UInt8(ascii: ":")]) {
            sawGap = true
            index = 2
        } else if text.first == UInt8(ascii: ":") {
            return nil
        }
        while index < text.count {
            let byte = text[index]
            if byte == UInt8(ascii: ":") {
                if current.isEmpty {
                    // `::` inside, once; a lone `:` with nothing before it is malformed.
                    guard !sawGap, index > 0, text[index - 1] == UInt8(ascii: ":") else { return nil }
                    sawGap = true
                } else {
                    guard flush() else { return nil }
                    guard index + 1 < text.count else { return nil }  // a trailing single `:`
                }
                index += 1
            } else if byte == UInt8(ascii: ".") {
                // The rest is an embedded IPv4 address, from the start of this group.
                guard let octets = parseIPv4(text[(index - current.count)...]) else { return nil }
                embeddedIPv4 = octets
                current.removeAll()
                index = text.count
            } else {
                current.append(byte)
                index += 1
            }
        }
        guard flush() else { return nil }
        var groups = head.count + tail.count + (embeddedIPv4 == nil ? 0 : 2)
        guard groups <= 8 else { return nil }
        if !sawGap && groups != 8 { return nil }
        if sawGap && groups == 8 { return nil }
        var bytes: [UInt8] = []
        for group in head { bytes += [UInt8(group >> 8), UInt8(group & 0xff)] }
        if sawGap {
            while groups < 8 {
                bytes += [0, 0]
                groups += 1
            }
        }
        for group in tail { bytes += [UInt8(group >> 8), UInt8(group & 0xff)] }
        if let embeddedIPv4 { bytes += embeddedIPv4 }
        return bytes.count == 16 ? bytes : nil
    }

    private static func hexValue(_ byte: UInt8) -> UInt8? {
        switch byte {
        case UInt8(ascii: "0")...UInt8(ascii: "9"): byte - UInt8(ascii: "0")
        case UInt8(ascii: "a")...UInt8(ascii: "f"): byte - UInt8(ascii: "a") + 10
        case UInt8(ascii: "A")...UInt8(ascii: "F"): byte - UInt8(ascii: "A") + 10
        default: nil
        }
    }
}
