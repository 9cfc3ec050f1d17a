import Testing
import VitrineCore

/// Whom a request is from: addresses and blocks as text, the PROXY protocol header, and
/// `X-Forwarded-For` through trusted proxies only.
struct ClientAddressTests {
    @Test(arguments: [
        ("192.0.2.1", "192.0.2.1"), ("::1", "::1"), ("2001:DB8:0:0:0:0:0:1", "2001:db8::1"), ("[2001:db8::1]", "2001:db8::1"),
        ("::ffff:192.0.2.1", "192.0.2.1"), ("2001:db8::", "2001:db8::"), ("1:2:3:4:5:6:7:8", "1:2:3:4:5:6:7:8"), ("::", "::"),
    ])
    func addressesParseAndPrint(_ text: String, _ printed: String) throws {
        let address = try #require(IPAddress(parsing: text))
        #expect(address.description == printed)
        #expect(IPAddress(parsing: address.description) == address)
    }

    @Test(arguments: [
        "", "1.2.3", "1.2.3.4.5", "256.1.1.1", "01.2.3.4", "1.2.3.4 ", "1::2::3", ":1:2", "1:2:3:4:5:6:7:8:9", "12345::", "g::1",
        "1:2:3:4:5:6:7:8::", "::1.2.3", "1.2.3.-4", String(repeating: "1", count: 100), "1:",
    ])
    func malformedAddressesAreRefused(_ text: String) {
        #expect(IPAddress(parsing: text) == nil, "\(text)")
    }

    @Test func blocksHoldTheirAddresses() throws {
        let ten = try #require(CIDRBlock(parsing: "10.0.0.0/8"))
        #expect(ten.contains(IPAddress(parsing: "10.200.3.4")!))
        #expect(ten.contains(IPAddress(parsing: "::ffff:10.0.0.1")!))
        #expect(!ten.contains(IPAddress(parsing: "11.0.0.1")!))
        let v6 = try #require(CIDRBlock(parsing: "2001:db8::/32"))
        #expect(v6.contains(IPAddress(parsing: "2001:db8:ffff::1")!))
        #expect(!v6.contains(IPAddress(parsing: "2001:db9::1")!))
        let one = try #require(CIDRBlock(parsing: "127.0.0.1"))
        #expect(one.contains(IPAddress(parsing: "127.0.0.1")!) && !one.contains(IPAddress(parsing: "127.0.0.2")!))
        #expect(CIDRBlock(parsing: "10.0.0.0/33") == nil)
        #expect(CIDRBlock(parsing: "10.0.0.0/-1") == nil)
        #expect(CIDRBlock(parsing: "2001:db8::/129") == nil)
        #expect(CIDRBlock(parsing: "0.0.0.0/0")!.contains(IPAddress(parsing: "8.8.8.8")!))
        #expect(ten.description == "10.0.0.0/8")
    }

    @Test func anUntrustedPeersForwardingFieldsAreDropped() {
        let trusted = [CIDRBlock(parsing: "10.0.0.0/8")!]
        let forwarding = ClientForwarding.resolve(
            peer: IPAddress(parsing: "203.0.113.7"), peerText: "203.0.113.7", forwardedFor: ["1.2.3.4"], forwardedProto: "https",
            trusted: trusted)
        #expect(forwarding == ClientForwarding(client: "203.0.113.7", forwardedFor: "203.0.113.7", proto: "http"))
    }

    @Test func aTrustedChainNamesTheRightMostUntrustedHop() {
        let trusted = [CIDRBlock(parsing: "10.0.0.0/8")!]
        let forwarding = ClientForwarding.resolve(
            peer: IPAddress(parsing: "10.0.0.5"), peerText: "10.0.0.5", forwardedFor: ["6.6.6.6, 198.51.100.4", "10.0.0.9"],
            forwardedProto: "HTTPS", trusted: trusted)
        // 6.6.6.6 is what the client itself claimed: the walk stops at the first untrusted hop.
        #expect(forwarding.client == "198.51.100.4")
        #expect(forwarding.forwardedFor == "6.6.6.6, 198.51.100.4, 10.0.0.9, 10.0.0.5")
        #expect(forwarding.proto == "https")
        let junk = ClientForwarding.resolve(
            peer: IPAddress(parsing: "10.0.0.5"), peerText: "10.0.0.5", forwardedFor: ["198.51.100.4, not-an-address"],
            forwardedProto: "gopher", trusted: trusted)
        #expect(junk.client == "10.0.0.5")
        #expect(junk.proto == "http")
    }

    @Test func proxyProtocolV1() throws {
        let text = Array("PROXY TCP4 192.0.2.1 198.51.100.2 51234 443\r\nGET /".utf8)
        guard case .header(let header, let length) = ProxyProtocolHeader.parse(text) else {
            Issue.record("not parsed")
            return
        }
        #expect(header.source == IPAddress(parsing: "192.0.2.1") && header.sourcePort == 51234)
        #expect(length == text.count - 5)
        let v6 = Array("PROXY TCP6 2001:db8::1 2001:db8::2 1 2\r\n".utf8)
        guard case .header(let header6, _) = ProxyProtocolHeader.parse(v6) else {
            Issue.record("v6 not parsed")
            return
        }
        #expect(header6.source == IPAddress(parsing: "2001:db8::1"))
        #expect(ProxyProtocolHeader.parse(Array("PROXY UNKNOWN\r\n".utf8)) == .header(ProxyProtocolHeader(source: nil, sourcePort: nil), length: 15))
        #expect(ProxyProtocolHeader.parse(Array("PROXY TCP4 192.0.2.1".utf8)) == .incomplete)
        #expect(ProxyProtocolHeader.parse(Array("PRO".utf8)) == .incomplete)
        for bad in [
            "GET / HTTP/1.1\r\n", "PROXY TCP4 192.0.2.1 198.51.100.2 51234 70000\r\n", "PROXY TCP4 2001:db8::1 1.2.3.4 1 2\r\n",
            "PROXY TCP4 1.2.3.4 1.2.3.4 1 2\n", "PROXY TCP5 1.2.3.4 1.2.3.4 1 2\r\n", "PROXY " + String(repeating: "x", count: 120),
        ] {
            guard case .invalid = ProxyProtocolHeader.parse(Array(bad.utf8)) else {
                Issue.record("accepted: \(bad)")
                continue
            }
        }
    }

    @Test func proxyProtocolV2() throws {
        let signature: [UInt8] = [0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D, 0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A]
        let tcp4 = signature + [0x21, 0x11, 0x00, 0x0C, 192, 0, 2, 1, 198, 51, 100, 2, 0xC8, 0x22, 0x01, 0xBB] + Array("GET".utf8)
        #expect(ProxyProtocolHeader.parse(tcp4) == .header(ProxyProtocolHeader(source: IPAddress(parsing: "192.0.2.1"), sourcePort: 51234), length: 28))
        // TLVs after the addresses are skipped with them.
        let withTLV = signature + [0x21, 0x11, 0x00, 0x11, 192, 0, 2, 1, 198, 51, 100, 2, 0, 1, 0, 2, 0x04, 0x00, 0x02, 0xAB, 0xCD]
        #expect(ProxyProtocolHeader.parse(withTLV) == .header(ProxyProtocolHeader(source: IPAddress(parsing: "192.0.2.1"), sourcePort: 1), length: 33))
        let v6 = signature + [0x21, 0x21, 0x00, 0x24] + [0x20, 0x01, 0x0D, 0xB8] + Array(repeating: 0, count: 11) + [1]
            + Array(repeating: 0, count: 16) + [0, 80, 1, 187]
        #expect(ProxyProtocolHeader.parse(v6) == .header(ProxyProtocolHeader(source: IPAddress(parsing: "2001:db8::1"), sourcePort: 80), length: 52))
        let local = signature + [0x20, 0x00, 0x00, 0x00]
        #expect(ProxyProtocolHeader.parse(local) == .header(ProxyProtocolHeader(source: nil, sourcePort: nil), length: 16))
        #expect(ProxyProtocolHeader.parse(Array(tcp4.prefix(20))) == .incomplete)
        #expect(ProxyProtocolHeader.parse(Array(signature.prefix(5))) == .incomplete)
        guard case .invalid = ProxyProtocolHeader.parse(signature + [0x31, 0x11, 0, 0]) else { Issue.record("version 3 accepted"); return }
        guard case .invalid = ProxyProtocolHeader.parse(signature + [0x21, 0x11, 0, 4, 1, 2, 3, 4]) else {
            Issue.record("short IPv4 block accepted")
            return
        }
        guard case .invalid = ProxyProtocolHeader.parse(signature + [0x21, 0x11, 0xFF, 0xFF]) else { Issue.record("64 KiB header accepted"); return }
    }
}
