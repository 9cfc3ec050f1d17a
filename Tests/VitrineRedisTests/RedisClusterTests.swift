import Foundation
import NIOCore
import NIOPosix
import Testing
@testable import VitrineRedis

/// Redis Cluster's arithmetic and replies, as plain values, and against the real local cluster
/// that `make test` starts (`VITRINE_TEST_REDIS_CLUSTER`; in CI a missing cluster is a failure).
@Suite(.timeLimit(.minutes(1)))
struct RedisClusterTests {
    static func seeds() -> [RedisClusterTopology.Endpoint]? {
        guard let text = ProcessInfo.processInfo.environment["VITRINE_TEST_REDIS_CLUSTER"] else {
            if ProcessInfo.processInfo.environment["CI"] == "true" {
                Issue.record("VITRINE_TEST_REDIS_CLUSTER is not set: run the tests with `make test`")
            }
            return nil
        }
        return text.split(separator: ",").compactMap { seed in
            guard let colon = seed.lastIndex(of: ":"), let port = Int(seed[seed.index(after: colon)...]) else { return nil }
            return RedisClusterTopology.Endpoint(host: String(seed[..<colon]), port: port)
        }
    }

    @Test func slotsAreRedisCRC16() {
        // The cluster specification's check value: CRC16("123456789") = 0x31C3.
        #expect(Array("123456789".utf8).withUnsafeBufferPointer { RedisClusterSlot.crc16($0[...]) } == 0x31C3)
        #expect(RedisClusterSlot.slot(of: "123456789") == 0x31C3 & 0x3FFF)
        #expect(RedisClusterSlot.slot(of: "") == 0)
        // Hash tags: the first {...} with something in it.
        #expect(RedisClusterSlot.slot(of: "{user1000}.following") == RedisClusterSlot.slot(of: "user1000"))
        #expect(RedisClusterSlot.slot(of: "foo{}{bar}") == RedisClusterSlot.slot(of: "foo{}{bar}".utf8))
        #expect(RedisClusterSlot.slot(of: "foo{}{bar}") != RedisClusterSlot.slot(of: "bar"))
        #expect(RedisClusterSlot.slot(of: "foo{{bar}}zap") == RedisClusterSlot.slot(of: "{bar"))
        #expect(RedisClusterSlot.slot(of: "foo{bar}{zap}") == RedisClusterSlot.slot(of: "bar"))
        #expect(RedisClusterSlot.slot(of: "{") == RedisClusterSlot.slot(of: "{".utf8))
    }

    @Test func redirectsAreParsed() {
        #expect(RedisClusterRedirect(error: "MOVED 3999 127.0.0.1:6381") == .init(kind: .moved, slot: 3999, host: "127.0.0.1", port: 6381))
        #expect(RedisClusterRedirect(error: "ASK 3999 10.0.0.2:7000") == .init(kind: .ask, slot: 3999, host: "10.0.0.2", port: 7000))
        #expect(RedisClusterRedirect(error: "MOVED 1 [2001:db8::1]:7000") == .init(kind: .moved, slot: 1, host: "2001:db8::1", port: 7000))
        #expect(RedisClusterRedirect(error: "MOVED 1 2001:db8::1:7000") == .init(kind: .moved, slot: 1, host: "2001:db8::1", port: 7000))
        #expect(RedisClusterRedirect(error: "MOVED 1 :7000") == .init(kind: .moved, slot: 1, host: "", port: 7000))
        for bad in ["MOVED 16384 a:1", "MOVED -1 a:1", "MOVED 1 a", "MOVED 1 a:0", "MOVED 1 a:70000", "ERR wrong", "MOVED 1", "ASK x a:1", ""] {
            #expect(RedisClusterRedirect(error: bad) == nil, "\(bad)")
        }
    }

    @Test func clusterSlotsRepliesAreChecked() throws {
        func node(_ host: String, _ port: Int64) -> RESPValue { .array([.bulkString(ByteBuffer(string: host)), .integer(port), .bulkString(ByteBuffer(string: "id"))]) }
        let reply = RESPValue.array([
            .array([.integer(0), .integer(8191), node("10.0.0.1", 7000), node("10.0.0.4", 7003)]),
            .array([.integer(8192), .integer(16383), node("", 7001)]),
        ])
        let topology = try RedisClusterTopology(clusterSlots: reply, answeredBy: .init(host: "10.0.0.9", port: 7009))
        #expect(topology.shards.count == 2)
        #expect(topology.uncoveredSlots == 0)
        #expect(topology.shard(forSlot: 0)?.primary == .init(host: "10.0.0.1", port: 7000))
        #expect(topology.shard(forSlot: 0)?.replicas == [.init(host: "10.0.0.4", port: 7003)])
        #expect(topology.shard(forSlot: 16383)?.primary == .init(host: "10.0.0.9", port: 7001))
        #expect(topology.shard(forSlot: 16384) == nil)
        for bad: RESPValue in [
            .integer(1), .array([.array([.integer(5), .integer(4), node("a", 1)])]), .array([.array([.integer(0), .integer(16384), node("a", 1)])]),
            .array([.array([.integer(0), .integer(1), .array([.bulkString(ByteBuffer(string: "a"))])])]),
            .array([.array([.integer(0), .integer(1), node("a", 0)])]),
        ] {
            #expect(throws: RedisClusterTopology.ParseError.self) { try RedisClusterTopology(clusterSlots: bad, answeredBy: .init(host: "x", port: 1)) }
        }
        let partial = try RedisClusterTopology(
            clusterSlots: .array([.array([.integer(0), .integer(99), node("a", 1)])]), answeredBy: .init(host: "x", port: 1))
        #expect(partial.uncoveredSlots == 16284)
    }

    @Test func theLocalClusterAgreesOnSlotsAndItsMap() async throws {
        guard let seeds = Self.seeds(), let seed = seeds.first else { return }
        let url = try RedisURL(parsing: "redis://\(seed.host):\(seed.port)/0")
        let connection = try await RedisConnection.connect(to: url, on: MultiThreadedEventLoopGroup.singleton.next())
        var generator = SystemRandomNumberGenerator()
        for index in 0..<200 {
            let key = index % 3 == 0 ? "vt:{tag\(index)}:k" : String((0..<Int.random(in: 0...40, using: &generator)).map { _ in
                Character(UnicodeScalar(UInt8.random(in: 0x21...0x7E, using: &generator)))
            })
            let reply = try await connection.send(["CLUSTER", "KEYSLOT", .string(key)]).get()
            #expect(reply.integer.map(Int.init) == RedisClusterSlot.slot(of: key), "\(key)")
        }
        let slots = try await connection.send(["CLUSTER", "SLOTS"]).get()
        let topology = try RedisClusterTopology(clusterSlots: slots, answeredBy: seed)
        #expect(topology.shards.count == 3)
        #expect(topology.uncoveredSlots == 0)
        #expect(topology.shards.allSatisfy { $0.replicas.count == 1 })
        #expect(Set(topology.shards.flatMap { [$0.primary] + $0.replicas }) == Set(seeds))
        // A key on another shard is redirected with MOVED, to the node the map names.
        let key = try #require((0..<100).map { "vt:moved:\($0)" }.first { topology.shard(forSlot: RedisClusterSlot.slot(of: $0))?.primary != seed })
        await #expect(throws: RedisError.self) { try await connection.send(["GET", .string(key)]).get() }
        do {
            _ = try await connection.send(["GET", .string(key)]).get()
        } catch RedisError.server(let message) {
            let redirect = RedisClusterRedirect(error: message)
            #expect(redirect?.kind == .moved)
            #expect(redirect?.slot == RedisClusterSlot.slot(of: key))
            #expect(redirect.map { RedisClusterTopology.Endpoint(host: $0.host, port: $0.port) } == topology.shard(forSlot: RedisClusterSlot.slot(of: key))?.primary)
        }
        await connection.close()
    }

    @Test func clusterURLsNameTheSeedsAndTheCredentialsOfEveryNode() throws {
        let url = try RedisClusterURL(parsing: "rediss-cluster://app:secret@10.0.0.1:7000,10.0.0.2:7001,[::1]:7002?ssl_ca_certs=/etc/ca.pem")
        #expect(url.seeds.map(\.description) == ["10.0.0.1:7000", "10.0.0.2:7001", "[::1]:7002"])
        #expect(url.template.tls && url.template.user == "app" && url.template.password == "secret")
        #expect(url.template.caCertificatesFile == "/etc/ca.pem")
        #expect(url.description == "rediss-cluster://app:***@10.0.0.1:7000,10.0.0.2:7001,[::1]:7002?ssl_ca_certs=/etc/ca.pem")
        #expect(try RedisClusterURL(parsing: "redis-cluster://r:7000").seeds == [RedisClusterTopology.Endpoint(host: "r", port: 7000)])
        for bad in ["redis://r:7000", "redis-cluster://", "redis-cluster://a:1,,b:2", "redis-cluster://a:1/2", "redis-cluster://a:99999"] {
            #expect(throws: RedisError.self, "\(bad)") { try RedisClusterURL(parsing: bad) }
        }
        #expect(RedisClusterURL.isCluster("redis-cluster://a:1") && !RedisClusterURL.isCluster("redis://a:1"))
    }
}
