import Foundation
import NIOCore
import VitrineFeed
import VitrineProxy
import VitrineRedis

/// The change feed's cursor in Redis, per node (its host name and listen port), for nodes that
/// keep nothing on disk between restarts. The value carries the outbox it belongs to, like the
/// file's.
struct RedisCursorStore: CursorStore {
    let backend: RedisBackend
    let key: String
    let loop: any EventLoop

    init(backend: RedisBackend, channel: String, node: String, loop: any EventLoop) {
        self.backend = backend
        self.loop = loop
        self.key = "vt:feed:cursor:\(channel):\(node)"
    }

    func load() async throws -> String? {
        // Redis unreachable is an error (the feed retries), not "no cursor" (which would skip history).
        try await backend.send(["GET", .string(key)], key: key, on: loop).get().string
    }

    func save(_ cursor: String) async {
        _ = try? await backend.send(["SET", .string(key), .string(cursor)], key: key, on: loop).get()
    }
}
