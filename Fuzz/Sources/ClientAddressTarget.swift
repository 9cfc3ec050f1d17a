import VitrineCore

/// Whom a connection is from, as untrusted bytes say: the PROXY protocol header (v1 text, v2
/// binary), addresses and CIDR blocks as text, `X-Forwarded-For` through trusted proxies, and
/// the server name a TLS client hello asks for (SNI).
/// Besides never trapping: a header's length is within the bytes, an address printed parses back
/// to itself, and a block contains its own network.
enum ClientAddressTarget {
    static let trusted = ["10.0.0.0/8", "2001:db8::/32", "127.0.0.1"].compactMap { CIDRBlock(parsing: $0) }
    static let serverNames = ServerNameTable([
        (names: ["shop.example", "*.shop.example"], value: 0), (names: ["other.example", "*.cdn.other.example"], value: 1),
    ])!

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
        for line in text.split(separator: "\n", maxSplits: 8) {
            // A server name picks the same certificate whatever its case, with a trailing dot or not.
            let name = String(line)
            let picked = serverNames.value(for: name)
            precondition(serverNames.value(for: name.uppercased()) == picked || name.uppercased().utf8.count != name.utf8.count, "case changed the pick for \(name)")
            if !name.hasSuffix(".") { precondition(serverNames.value(for: name + ".") == picked, "a trailing dot changed the pick for \(name)") }
            precondition(!serverNames.claims(name) || picked == 0 || picked == 1)
        }
        let lines = text.split(separator: "\n").map(String.init)
        let forwarding = ClientForwarding.resolve(
            peer: IPAddress(parsing: "10.1.2.3"), peerText: "10.1.2.3", forwardedFor: lines, forwardedProto: lines.first,
            trusted: trusted)
        precondition(forwarding.forwardedFor.hasSuffix("10.1.2.3"), "the peer is not last in X-Forwarded-For")
        precondition(forwarding.proto == "http" || forwarding.proto == "https", "proto \(forwarding.proto)")
        let overTLS = ClientForwarding.resolve(
            peer: IPAddress(parsing: "192.0.2.1"), peerText: "192.0.2.1", forwardedFor: lines, forwardedProto: lines.first, scheme: "https",
            trusted: trusted)
        precondition(overTLS.proto == "https", "an untrusted peer's X-Forwarded-Proto replaced the listener's scheme")
    }
}
