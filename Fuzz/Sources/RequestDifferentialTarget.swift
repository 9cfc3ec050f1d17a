import NIOCore
import NIOEmbedded
import NIOHTTP1
import VitrineConfig
@testable import VitrineProxy

/// The proxy's request framing against NIO's llhttp-based `HTTPRequestDecoder`, on the same
/// bytes. A request one of them completes and the other refuses, or that they read differently,
/// is a finding, unless it is one of the differences the README's framing rules list with their
/// reasons (`documented`). Where the proxy refuses what llhttp accepts, the proxy is stricter on
/// purpose: every refusal of ours is one of those rules.
enum RequestDifferentialTarget {
    /// One request as a decoder delivered it.
    struct Request: Equatable {
        var method: String
        var uri: String
        var minor: Int
        var headers: [[String]]
        var body: [UInt8] = []
        var complete = false
        var keepAlive = true
    }

    struct Outcome {
        var requests: [Request] = []
        var refused = false
    }

    static func run(_ bytes: [UInt8]) {
        let ours = decodeWithVitrine(bytes)
        let theirs = decodeWithLLHTTP(bytes)
        let common = min(ours.requests.count, theirs.requests.count)
        for index in 0..<common {
            let mine = ours.requests[index]
            let other = theirs.requests[index]
            guard mine.complete && other.complete else { return }
            if mine != other && !readAlike(mine, other) {
                fatalError("differential: request \(index) read differently:\n  ours:   \(mine)\n  llhttp: \(other)")
            }
        }
        // A request we completed that llhttp refused.
        if ours.requests.count > common, theirs.refused, let extra = ours.requests.dropFirst(common).first, extra.complete {
            // After a request that ends the connection (HTTP/1.0 without keep-alive,
            // `Connection: close`) the proxy answers it and closes: nothing later is served.
            if common > 0 && !ours.requests[common - 1].keepAlive { return }
            if let reason = documented(extra) { _ = reason; return }
            fatalError("differential: ours accepts what llhttp refuses: \(extra)\n  input: \(escaped(bytes))")
        }
    }

    /// Known differences where the proxy accepts a request llhttp refuses, each listed in the
    /// README's framing rules.
    static func documented(_ request: Request) -> String? {
        if !llhttpMethods.contains(request.method) {
            return "extension methods: any token (RFC 9110 §9.1), passed to the origin, never cached"
        }
        return nil
    }

    /// Differences in how an accepted request is read that are not differences in meaning:
    /// llhttp keeps whitespace after a field value, which RFC 9110 §5.5 says is not part of it.
    static func readAlike(_ ours: Request, _ theirs: Request) -> Bool {
        var trimmed = theirs
        trimmed.headers = theirs.headers.map { field in
            var value = Substring(field[1])
            while let last = value.last, last == " " || last == "\t" { value = value.dropLast() }
            return [field[0], String(value)]
        }
        return trimmed == ours
    }

    static let llhttpMethods: Set<String> = [
        "DELETE", "GET", "HEAD", "POST", "PUT", "CONNECT", "OPTIONS", "TRACE", "COPY", "LOCK", "MKCOL", "MOVE", "PROPFIND",
        "PROPPATCH", "SEARCH", "UNLOCK", "BIND", "REBIND", "UNBIND", "ACL", "REPORT", "MKACTIVITY", "CHECKOUT", "MERGE",
        "M-SEARCH", "NOTIFY", "SUBSCRIBE", "UNSUBSCRIBE", "PATCH", "PURGE", "MKCALENDAR", "LINK", "UNLINK", "SOURCE", "QUERY",
    ]

    static func decodeWithVitrine(_ bytes: [UInt8]) -> Outcome {
        var decoder = RequestDecoder(limits: RequestDecoderTarget.limits)
        decoder.append(ByteBuffer(bytes: bytes))
        var outcome = Outcome()
        do {
            while let part = try decoder.next() { record(part, into: &outcome) }
        } catch {
            outcome.refused = true
        }
        return outcome
    }

    static func decodeWithLLHTTP(_ bytes: [UInt8]) -> Outcome {
        let channel = EmbeddedChannel()
        var outcome = Outcome()
        do {
            try channel.pipeline.syncOperations.addHandler(ByteToMessageHandler(HTTPRequestDecoder(leftOverBytesStrategy: .dropBytes)))
            try channel.writeInbound(ByteBuffer(bytes: bytes))
            while let part = try channel.readInbound(as: HTTPServerRequestPart.self) { record(part, into: &outcome) }
        } catch {
            while let part = try? channel.readInbound(as: HTTPServerRequestPart.self) { record(part, into: &outcome) }
            outcome.refused = true
        }
        _ = try? channel.finish()
        return outcome
    }

    static func record(_ part: HTTPServerRequestPart, into outcome: inout Outcome) {
        switch part {
        case .head(let head):
            outcome.requests.append(
                Request(
                    method: head.method.rawValue, uri: head.uri, minor: head.version.minor,
                    headers: head.headers.map { [$0.name, $0.value] }, keepAlive: head.isKeepAlive))
        case .body(let buffer):
            guard !outcome.requests.isEmpty else { return }
            outcome.requests[outcome.requests.count - 1].body += buffer.readableBytesView
        case .end:
            guard !outcome.requests.isEmpty else { return }
            outcome.requests[outcome.requests.count - 1].complete = true
        }
    }

    static func escaped(_ bytes: [UInt8]) -> String {
        bytes.map { byte in
            switch byte {
            case 0x0D: return "\\r"
            case 0x0A: return "\\n"
            case 0x20..<0x7F: return String(UnicodeScalar(byte))
            default: return "\\x" + String(byte, radix: 16)
            }
        }.joined()
    }
}
