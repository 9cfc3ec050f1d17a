/// Who a request is from, and what the origin is told about it: `X-Forwarded-For` and
/// `X-Forwarded-Proto` as a client sent them are believed only from a trusted peer
/// (`server.trusted_proxies`, as nginx's `set_real_ip_from`); from anyone else they are
/// dropped and written anew.
public struct ClientForwarding: Sendable, Equatable {
    /// The client's address as logs name it: the peer's, or behind trusted proxies the
    /// right-most address in `X-Forwarded-For` that is not one of them (nginx's recursive
    /// `real_ip`).
    public let client: String
    /// The `X-Forwarded-For` value sent to the origin: the trusted chain with the peer appended,
    /// or the peer alone.
    public let forwardedFor: String
    /// The `X-Forwarded-Proto` value sent to the origin.
    public let proto: String

    public init(client: String, forwardedFor: String, proto: String) {
        self.client = client
        self.forwardedFor = forwardedFor
        self.proto = proto
    }

    /// A client that speaks for itself, with nothing forwarded believed: an untrusted peer, or
    /// the proxy's own fetches (background refreshes, listings) under a name of their own.
    public static func direct(_ name: String, scheme: String = "http") -> ClientForwarding {
        ClientForwarding(client: name, forwardedFor: name, proto: scheme)
    }

    /// - Parameters:
    ///   - peer: the connection's peer (from the socket, or a PROXY protocol header), parsed.
    ///   - peerText: how the peer is written (kept even when it does not parse).
    ///   - forwardedFor: the request's `X-Forwarded-For` field lines, in order.
    ///   - forwardedProto: the request's `X-Forwarded-Proto`, if any.
    ///   - scheme: the scheme the client used on this listener.
    public static func resolve(
        peer: IPAddress?, peerText: String, forwardedFor: [String], forwardedProto: String?, scheme: String = "http",
        trusted: [CIDRBlock]
    ) -> ClientForwarding {
        guard !trusted.isEmpty, let peer, trusted.contains(peer) else {
            return .direct(peerText, scheme: scheme)
        }
        let hops = forwardedFor.flatMap { $0.split(separator: ",") }.map { String($0.trimmingSpaces()) }.filter { !$0.isEmpty }
        var client = peerText
        for hop in hops.reversed() {
            // The first hop from the right that is not a trusted proxy is the client; one that
            // is not an address at all ends the walk (nothing left of it can be believed).
            guard let address = IPAddress(parsing: hop) else { break }
            client = hop
            if !trusted.contains(address) { break }
        }
        let chain = hops.isEmpty ? peerText : hops.joined(separator: ", ") + ", " + peerText
        let proto = forwardedProto.map { $0[...].trimmingSpaces().lowercased() }.flatMap { $0 == "https" || $0 == "http" ? $0 : nil } ?? scheme
        return ClientForwarding(client: client, forwardedFor: chain, proto: proto)
    }
}
