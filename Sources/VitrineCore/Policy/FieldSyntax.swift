/// The byte classes of HTTP field syntax (RFC 9110 §5), in one place for everything that reads
/// or checks fields: the request framing, the config's field names, entries read back from the
/// shared tier.
public enum FieldSyntax {
    /// RFC 9110 §5.6.2 tchar: the bytes of a token (a method, a field name).
    @inlinable
    public static func isTokenByte(_ byte: UInt8) -> Bool {
        switch byte {
        case UInt8(ascii: "a")...UInt8(ascii: "z"), UInt8(ascii: "A")...UInt8(ascii: "Z"), UInt8(ascii: "0")...UInt8(ascii: "9"):
            return true
        case UInt8(ascii: "!"), UInt8(ascii: "#"), UInt8(ascii: "$"), UInt8(ascii: "%"), UInt8(ascii: "&"), UInt8(ascii: "'"),
            UInt8(ascii: "*"), UInt8(ascii: "+"), UInt8(ascii: "-"), UInt8(ascii: "."), UInt8(ascii: "^"), UInt8(ascii: "_"),
            UInt8(ascii: "`"), UInt8(ascii: "|"), UInt8(ascii: "~"):
            return true
        default:
            return false
        }
    }

    /// A control character other than HTAB: never allowed in a field value or a chunk line.
    @inlinable
    public static func isControl(_ byte: UInt8) -> Bool {
        byte < 0x20 && byte != 0x09 || byte == 0x7F
    }

    /// A non-empty token.
    public static func isToken(_ text: String) -> Bool {
        !text.isEmpty && text.utf8.allSatisfy(isTokenByte)
    }

    /// A field value with no control character (CR and LF above all).
    public static func isFieldValue(_ text: String) -> Bool {
        !text.utf8.contains(where: isControl)
    }
}
