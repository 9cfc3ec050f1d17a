import VitrineCore

/// Whom a connection is from, as untrusted bytes say: the PROXY protocol header (v1 text, v2
/// binary), addresses and CIDR blocks as text, and `X-Forwarded-For` through trusted proxies.
/// Besides never trapping: a header's length is within the bytes, an address printed parses back
/// to itself, and a block contains its own network.
enum ClientAddressTarget {
    static let trusted = ["10.0.0.0/8", "2001:db8::/32", "127.0.0.1"].compactMap { CIDRBlock(parsing: $0) }

    static func run(_ bytes: [UInt8]) {
        switch ProxyProtocolHeader.parse(bytes) {
        case .header(let header, let length):
            precondition(length > 0 && length <= bytes.count && length <= ProxyProtocolHeader.maxLength, "header length \(length) outside the input")
            if let source = header.source { precondition(IPAddress(parsing: source.description) == source, "\(source) does not parse back") }
        case .incomplete, .invalid:
            break
        }
        let text = String(decoding: bytes, as: UTF8.self)
        for line in text.split(separator: "\n", maxSplits: 8) {
            if let address = IPAddress(parsing: line) {
                precondition(IPAddress(parsing: address.description) == address, "\(address) does not parse back")
            }
            if let block = CIDRBlock(parsing: line) {
                precondition(block.contains(block.network), "\(block) does not contain its network")
                _ = CIDRBlock(parsing: block.description)
            }
        }
        let lines = text.split(separator: "\n").map(String.init)
        let forwarding = ClientForwarding.resolve(
            peer: IPAddress(parsing: "10.1.2.3"), peerText: "10.1.2.3", forwardedFor: lines, forwardedProto: lines.first,
            trusted: trusted)
        precondition(forwarding.forwardedFor.hasSuffix("10.1.2.3"), "the peer is not last in X-Forwarded-For")
        precondition(forwarding.proto == "http" || forwarding.proto == "https", "proto \(forwarding.proto)")
    }
}
