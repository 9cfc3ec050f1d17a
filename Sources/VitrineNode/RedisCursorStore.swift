import Foundation
import VitrineFeed
import VitrineProxy
import VitrineRedis

/// The change feed's cursor in Redis, per node (its host name and listen port), for nodes that
/// keep nothing on disk between restarts. The value carries the outbox it belongs to, like the
/// file's.
struct RedisCursorStore: CursorStore {
    let client: RedisClient
    let key: String

    init(client: RedisClient, channel: String, node: String) {
        self.client = client
        self.key = "vt:feed:cursor:\(channel):\(node)"
    }

    func load() async throws -> String? {
        // Redis unreachable is an error (the feed retries), not "no cursor" (which would skip history).
        try await client.send(["GET", .string(key)]).string
    }

    func save(_ cursor: String) async {
        _ = try? await client.send(["SET", .string(key), .string(cursor)])
    }
}
