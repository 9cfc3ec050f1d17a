import NIOCore
@testable import VitrineProxy

/// Entries read back from the shared tier (Redis, another node, another version): a miss or an
/// entry, never a trap; an entry that decodes encodes back to what decodes the same.
enum L2EntryTarget {
    static func run(_ bytes: [UInt8]) {
        var input = bytes
        // Most inputs would fail the magic and version: give them, so the rest is exercised.
        if input.count >= 5 && input[0] & 1 == 0 {
            input[0] = 0x56; input[1] = 0x54; input[2] = 0x4C; input[3] = 0x32; input[4] = L2EntryCodec.version
        }
        guard let entry = L2EntryCodec.decode(ByteBuffer(bytes: input)) else { return }
        let again = L2EntryCodec.decode(L2EntryCodec.encode(entry))
        precondition(again != nil, "an entry that decodes does not decode after encoding")
        for now in [0, entry.storedAt, 1_767_225_600, Int(Int32.max), 253_402_300_799] {
            if let copy = entry.localCopy(now: now, compress: true) {
                precondition(copy.ttl >= .zero && copy.retention >= .zero, "negative lifetime")
            }
        }
    }
}
