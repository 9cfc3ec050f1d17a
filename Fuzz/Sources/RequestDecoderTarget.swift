import NIOCore
import NIOHTTP1
import VitrineConfig
import VitrineCore
@testable import VitrineProxy

/// The request framing the proxy runs on every byte a client sends: fed in pieces whose sizes
/// the first input byte chooses, so that a head or a chunk split anywhere is exercised.
enum RequestDecoderTarget {
    static let limits: LimitSettings = {
        var limits = LimitSettings()
        limits.maxRequestLine = 1024
        limits.maxHeaderBytes = 2048
        limits.maxHeaders = 32
        limits.maxBody = ByteSize(1 << 16)
        return limits
    }()

    static func run(_ bytes: [UInt8]) {
        guard let first = bytes.first else { return }
        let input = bytes.dropFirst()
        let piece = Int(first % 16) + 1
        var decoder = RequestDecoder(limits: limits)
        var offset = input.startIndex
        var parts = 0
        while offset < input.endIndex {
            let end = input.index(offset, offsetBy: piece, limitedBy: input.endIndex) ?? input.endIndex
            decoder.append(ByteBuffer(bytes: input[offset..<end]))
            offset = end
            do {
                while let part = try decoder.next() {
                    parts += 1
                    check(part)
                }
            } catch {
                return  // refused: the connection is answered and closed
            }
        }
        precondition(parts <= input.count + 1, "more parts than bytes")
    }

    /// What the proxy relies on in a head it is handed.
    static func check(_ part: HTTPServerRequestPart) {
        guard case .head(let head) = part else { return }
        precondition(head.uri.utf8.first == UInt8(ascii: "/"), "a target that is not a path")
        precondition(head.version.major == 1 && head.version.minor <= 1, "another HTTP version")
        precondition(head.headers[canonicalForm: "host"].count <= 1, "more than one Host")
        precondition(
            !(head.headers.contains(name: "content-length") && head.headers.contains(name: "transfer-encoding")),
            "both framing fields")
        // What the pipeline does first with a head.
        let normalizer = CacheKeyNormalizer()
        _ = normalizer.key(target: head.uri, host: head.headers.first(name: "host"))
        _ = head.hasBody
        _ = HopByHop.connectionTokens(head.headers)
        _ = RequestCacheDirectives(cacheControl: head.headers["cache-control"], pragma: head.headers["pragma"])
        _ = VaryKey.acceptsGzip(head.headers)
    }
}
