/// The PROXY protocol header (v1 text or v2 binary) a layer-4 load balancer writes before the
/// client's bytes, saying whom the connection is really from
/// (https://www.haproxy.org/download/2.9/doc/proxy-protocol.txt). Parsed from untrusted bytes
/// without trapping; a listener that expects it refuses a connection without one.
public struct ProxyProtocolHeader: Sendable, Equatable {
    /// Where the connection came from, per the load balancer; nil for `LOCAL` (v2: the balancer's
    /// own health check) and `UNKNOWN`/unspecified families: the socket's peer stands.
    public let source: IPAddress?
    public let sourcePort: Int?

    /// What the bytes read so far are.
    public enum ParseResult: Sendable, Equatable {
        /// Not enough bytes yet to decide; read more (up to `maxLength` in all).
        case incomplete
        /// Not a PROXY header, or a malformed one: close the connection.
        case invalid(String)
        /// A header of `length` bytes; the client's own bytes follow it.
        case header(ProxyProtocolHeader, length: Int)
    }

    /// The most bytes buffered before a header must be complete (v1 is at most 107; v2's
    /// address block and TLVs are bounded here, not by its 16-bit length).
    public static let maxLength = 4096

    static let v2Signature: [UInt8] = [0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D, 0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A]
    static let v1Prefix = Array("PROXY ".utf8)

    public static func parse<Bytes: RandomAccessCollection>(_ input: Bytes) -> ParseResult where Bytes.Element == UInt8, Bytes.Index == Int {
        let bytes = Array(input.prefix(maxLength + 1))
        if bytes.isEmpty { return .incomplete }
        if bytes.first == v2Signature[0] {
            let known = min(bytes.count, v2Signature.count)
            guard bytes[0..<known].elementsEqual(v2Signature[0..<known]) else { return .invalid("not a PROXY protocol header") }
            return parseV2(bytes)
        }
        let known = min(bytes.count, v1Prefix.count)
        guard bytes[0..<known].elementsEqual(v1Prefix[0..<known]) else { return .invalid("not a PROXY protocol header") }
        return parseV1(bytes)
    }

    private static func parseV1(_ bytes: [UInt8]) -> ParseResult {
        // The line ends in CRLF within 107 bytes.
        guard let newline = bytes.prefix(107).firstIndex(of: 0x0A) else {
            return bytes.count >= 107 ? .invalid("PROXY v1 line longer than 107 bytes") : .incomplete
        }
        guard newline >= 1, bytes[newline - 1] == 0x0D else { return .invalid("PROXY v1 line does not end in CRLF") }
        let line = bytes[0..<(newline - 1)]
        let fields = line.split(separator: UInt8(ascii: " "), omittingEmptySubsequences: false)
        let length = newline + 1
        guard fields.count >= 2 else { return .invalid("PROXY v1 line without a protocol") }
        let family = String(decoding: fields[1], as: UTF8.self)
        if family == "UNKNOWN" { return .header(ProxyProtocolHeader(source: nil, sourcePort: nil), length: length) }
        guard family == "TCP4" || family == "TCP6", fields.count == 6 else { return .invalid("PROXY v1 line is not TCP4/TCP6 with four fields") }
        guard let source = IPAddress(parsing: String(decoding: fields[2], as: UTF8.self)),
            let destination = IPAddress(parsing: String(decoding: fields[3], as: UTF8.self)),
            source.isIPv4 == (family == "TCP4"), destination.isIPv4 == (family == "TCP4"),
            let sourcePort = port(fields[4]), port(fields[5]) != nil
        else { return .invalid("PROXY v1 addresses or ports are malformed") }
        return .header(ProxyProtocolHeader(source: source, sourcePort: sourcePort), length: length)
    }

    /// A decimal port, 0...65535, without leading zeros.
    private static func port(_ field: ArraySlice<UInt8>) -> Int? {
        guard !field.isEmpty, field.count <= 5, field.allSatisfy({ $0 >= 0x30 && $0 <= 0x39 }) else { return nil }
        if field.count > 1 && field.first == 0x30 { return nil }
        let value = field.reduce(0) { $0 * 10 + Int($1 - 0x30) }
        return value <= 65535 ? value : nil
    }

    private static func parseV2(_ bytes: [UInt8]) -> ParseResult {
        guard bytes.count >= 16 else { return .incomplete }
        let versionCommand = bytes[12]
        guard versionCommand >> 4 == 2 else { return .invalid("PROXY v2 with version \(versionCommand >> 4)") }
        let command = versionCommand & 0x0F
        guard command <= 1 else { return .invalid("PROXY v2 with command \(command)") }
        let family = bytes[13]
        let addressLength = Int(bytes[14]) << 8 | Int(bytes[15])
        let length = 16 + addressLength
        guard length <= maxLength else { return .invalid("PROXY v2 header of \(length) bytes") }
        guard bytes.count >= length else { return .incomplete }
        // LOCAL: the balancer speaking for itself; the addresses (if any) are ignored.
        if command == 0 { return .header(ProxyProtocolHeader(source: nil, sourcePort: nil), length: length) }
        switch family {
        case 0x11, 0x12:  // TCP or UDP over IPv4
            guard addressLength >= 12 else { return .invalid("PROXY v2 IPv4 block too short") }
            let source = IPAddress(networkBytes: bytes[16..<20])
            return .header(ProxyProtocolHeader(source: source, sourcePort: Int(bytes[24]) << 8 | Int(bytes[25])), length: length)
        case 0x21, 0x22:  // over IPv6
            guard addressLength >= 36 else { return .invalid("PROXY v2 IPv6 block too short") }
            let source = IPAddress(networkBytes: bytes[16..<32])
            return .header(ProxyProtocolHeader(source: source, sourcePort: Int(bytes[48]) << 8 | Int(bytes[49])), length: length)
        default:  // unspecified or a Unix socket: no address we can use
            return .header(ProxyProtocolHeader(source: nil, sourcePort: nil), length: length)
        }
    }

    public init(source: IPAddress?, sourcePort: Int?) {
        self.source = source
        self.sourcePort = sourcePort
    }
}
