/// A block of addresses, `10.0.0.0/8` or `2001:db8::/32` (a bare address is a block of one), as
/// `server.trusted_proxies` lists them.
public struct CIDRBlock: Sendable, Hashable, CustomStringConvertible {
    public let network: IPAddress
    /// Leading bits that must match, counted on the 128-bit form (an IPv4 `/8` is 104).
    public let prefixBits: Int

    /// Nil unless `text` is an address, optionally followed by `/bits` within its family's width.
    public init?(parsing text: some StringProtocol) {
        let parts = text.split(separator: "/", maxSplits: 1, omittingEmptySubsequences: false)
        guard let address = IPAddress(parsing: parts[0]) else { return nil }
        let width = address.isIPv4 ? 32 : 128
        var bits = width
        if parts.count == 2 {
            guard parts[1].utf8.count <= 3, let parsed = Int(parts[1]), parsed >= 0, parsed <= width else { return nil }
            bits = parsed
        }
        prefixBits = address.isIPv4 ? bits + 96 : bits
        network = Self.masked(address, bits: prefixBits)
    }

    /// Whether `address` is in this block.
    public func contains(_ address: IPAddress) -> Bool {
        Self.masked(address, bits: prefixBits) == network
    }

    public var description: String {
        "\(network)/\(network.isIPv4 ? prefixBits - 96 : prefixBits)"
    }

    private static func masked(_ address: IPAddress, bits: Int) -> IPAddress {
        var bytes = address.bytes
        for index in 0..<16 {
            let kept = min(max(bits - index * 8, 0), 8)
            bytes[index] &= kept == 8 ? 0xff : ~(0xff >> UInt8(kept))
        }
        return IPAddress(sixteenBytes: bytes)
    }
}

extension Array where Element == CIDRBlock {
    /// Whether any block holds `address`.
    public func contains(_ address: IPAddress) -> Bool {
        contains { $0.contains(address) }
    }
}
