import NIOCore
import NIOHTTP1
import VitrineCore

/// Whom a client connection is from: the socket's peer, or the one a PROXY protocol header
/// names; and how its requests' records start (who each is from, as trusted proxies say, and its
/// id). Kept by each transport: an HTTP/1.1 connection, an HTTP/2 stream.
struct ClientPeer {
    private(set) var peer: IPAddress?
    private(set) var text = "unknown"
    /// Who the requests are from when no trusted proxy speaks for someone else.
    private var forwarding: ClientForwarding
    /// How clients reach this listener: `https` on a TLS listener.
    let scheme: String

    init(scheme: String) {
        self.scheme = scheme
        self.forwarding = .direct("unknown", scheme: scheme)
    }

    mutating func set(_ text: String) {
        self.text = text
        peer = IPAddress(parsing: text)
        forwarding = .direct(text, scheme: scheme)
    }

    /// The record of a request that just arrived: who it is from, and its id (a trusted proxy's
    /// `X-Request-Id`, else `prefix-connection-n`).
    func record(for head: HTTPRequestHead, proxy: ProxyContext, connection: UInt64, request: Int, bytesBefore: Int) -> RequestRecord {
        var forwarding = self.forwarding
        var trustedID: String?
        if !proxy.trustedProxies.isEmpty, let peer, proxy.trustedProxies.contains(peer) {
            forwarding = ClientForwarding.resolve(
                peer: peer, peerText: text, forwardedFor: head.headers["x-forwarded-for"],
                forwardedProto: head.headers.first(name: "x-forwarded-proto"), scheme: scheme, trusted: proxy.trustedProxies)
            trustedID = head.headers.first(name: "x-request-id").flatMap { RequestRecord.isAcceptableID($0) ? $0 : nil }
        }
        return RequestRecord(
            started: .now(), head: head, forwarding: forwarding,
            requestID: trustedID ?? "\(proxy.requestIDPrefix)-\(String(connection, radix: 16))-\(request)",
            bytesBefore: bytesBefore)
    }
}
