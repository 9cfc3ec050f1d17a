import NIOCore
import VitrineRedis

/// Replies from Redis, through hiredis's reader: fed in pieces, as reads arrive. Each reply is
/// also read as a cluster would mean it: a `CLUSTER SLOTS` map, an error as a redirect (or a
/// `TRYAGAIN`), and its text as a `redis-cluster://` URL.
enum RESPTarget {
    static func run(_ bytes: [UInt8]) {
        guard let first = bytes.first else { return }
        let input = bytes.dropFirst()
        let piece = Int(first) + 1
        let decoder = RESPDecoder()
        var offset = input.startIndex
        var replies = 0
        while offset < input.endIndex {
            let end = input.index(offset, offsetBy: piece, limitedBy: input.endIndex) ?? input.endIndex
            do {
                try decoder.decode(ByteBuffer(bytes: input[offset..<end])) { value in
                    replies += 1
                    walk(value)
                    cluster(value)
                }
            } catch {
                return  // a protocol error: the connection is dropped
            }
            offset = end
        }
    }

    static func cluster(_ value: RESPValue) {
        let answeredBy = RedisClusterTopology.Endpoint(host: "127.0.0.1", port: 7000)
        if let topology = try? RedisClusterTopology(clusterSlots: value, answeredBy: answeredBy) {
            precondition(topology.uncoveredSlots >= 0 && topology.uncoveredSlots <= RedisClusterSlot.count)
            _ = topology.shard(forSlot: 0)
        }
        switch value {
        case .error(let text), .simpleString(let text):
            if let redirect = RedisClusterRedirect(error: text) {
                precondition(redirect.slot >= 0 && redirect.slot < RedisClusterSlot.count && redirect.port > 0 && redirect.port <= 65_535)
            }
            _ = RedisClusterSlot.slot(of: text)
            _ = RedisClusterRouting.decide(errorReply: text, answeredBy: answeredBy, redirects: 0)
            // The same bytes as a configured URL: seeds, credentials, parameters.
            if let url = try? RedisClusterURL(parsing: "redis-cluster://" + text) {
                precondition(!url.seeds.isEmpty && url.seeds.allSatisfy { $0.port > 0 && $0.port <= 65_535 })
                _ = url.description
            }
        default:
            break
        }
    }

    static func walk(_ value: RESPValue) {
        _ = value.string
        _ = value.integer
        _ = value.buffer
        if let elements = value.array { for element in elements { walk(element) } }
    }
}
