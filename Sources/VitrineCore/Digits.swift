/// Decimal numbers from outside (Postgres, Redis, a saved file), read without overflow.
extension FixedWidthInteger {
    /// Decimal digits only (no sign, no spaces), without overflow: nil for anything else.
    public static func parsingDigits(_ text: Substring) -> Self? {
        guard !text.isEmpty, text.utf8.count <= 20 else { return nil }
        var value: Self = 0
        for byte in text.utf8 {
            guard byte >= UInt8(ascii: "0"), byte <= UInt8(ascii: "9") else { return nil }
            let (shifted, overflow) = value.multipliedReportingOverflow(by: 10)
            let (sum, carry) = shifted.addingReportingOverflow(Self(byte - UInt8(ascii: "0")))
            guard !overflow, !carry else { return nil }
            value = sum
        }
        return value
    }
}
