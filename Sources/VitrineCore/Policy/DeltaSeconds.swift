/// `delta-seconds` (RFC 9111 §1.2.2): a non-negative count of seconds, digits only.
///
/// Values come from origins and clients, so they are read with saturating arithmetic: a value
/// past 2^31 is 2^31, as the RFC says, and nothing downstream (nanoseconds, deadlines, sums with
/// other ages) can overflow.
public enum DeltaSeconds {
    /// The largest value a cache need represent (RFC 9111 §1.2.2).
    public static let maximum = 2_147_483_648

    /// The value of `text`, or nil when it is not 1*DIGIT.
    public static func parse<Text: StringProtocol>(_ text: Text) -> Int? {
        var value = 0
        var digits = 0
        for byte in text.utf8 {
            guard byte >= UInt8(ascii: "0") && byte <= UInt8(ascii: "9") else { return nil }
            digits += 1
            if value < maximum { value = min(maximum, value * 10 + Int(byte - UInt8(ascii: "0"))) }
        }
        return digits > 0 ? value : nil
    }
}
