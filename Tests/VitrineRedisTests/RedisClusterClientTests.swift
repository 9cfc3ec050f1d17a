import Foundation
import NIOCore
import NIOPosix
import Testing
@testable import VitrineRedis

/// The cluster client against the real local cluster (`VITRINE_TEST_REDIS_CLUSTER`): routing by
/// slot, `ASK` while a slot migrates, `MOVED` once it has moved. Serialized: the migration test
/// changes the cluster's map (and puts it back).
@Suite(.serialized, .timeLimit(.minutes(1)))
struct RedisClusterClientTests {
    typealias Endpoint = RedisClusterTopology.Endpoint

    static func direct(_ endpoint: Endpoint) async throws -> RedisConnection {
        try await RedisConnection.connect(
            to: RedisURL(host: endpoint.host, port: endpoint.port), on: MultiThreadedEventLoopGroup.singleton.next())
    }

    @Test func commandsGoToTheirSlotsPrimary() async throws {
        guard let seeds = RedisClusterTests.seeds() else { return }
        let group = MultiThreadedEventLoopGroup.singleton
        let client = RedisClusterClient(seeds: seeds, group: group, commandTimeout: .seconds(2))
        let loop = group.next()
        let prefix = "vt:cluster-client:\(UUID().uuidString):"
        for index in 0..<200 {
            let key = prefix + "\(index)"
            #expect(try await client.send(["SET", .string(key), .string("v\(index)"), "PX", "60000"], key: key, on: loop).get() == .simpleString("OK"))
        }
        let topology = try #require(client.topology)
        #expect(topology.shards.count == 3)
        // Each key is on the primary the map names for its slot, and only there.
        var perShard: [Endpoint: Int] = [:]
        for index in 0..<200 {
            let key = prefix + "\(index)"
            let primary = try #require(topology.shard(forSlot: RedisClusterSlot.slot(of: key))?.primary)
            perShard[primary, default: 0] += 1
            #expect(try await client.send(["GET", .string(key)], key: key, on: loop).get().string == "v\(index)")
        }
        #expect(perShard.count == 3, "200 keys spread over the three primaries: \(perShard)")
        // Keys sharing a hash tag share a slot: a multi-key command on them is accepted.
        let tagged = ["{\(prefix)t}:a", "{\(prefix)t}:b"]
        let mset = try await client.send(["MSET", .string(tagged[0]), "1", .string(tagged[1]), "2"], key: tagged[0], on: loop).get()
        #expect(mset == .simpleString("OK"))
        await client.shutdown()
    }

    @Test func askDuringAMigrationAndMovedAfterIt() async throws {
        guard let seeds = RedisClusterTests.seeds() else { return }
        let group = MultiThreadedEventLoopGroup.singleton
        let client = RedisClusterClient(seeds: seeds, group: group, commandTimeout: .seconds(2))
        let loop = group.next()
        let map = try await client.refresh(on: loop).get()
        // A key, the slot it hashes to, that slot's primary (the source) and another (the target).
        let key = "vt:migrating:\(UUID().uuidString)"
        let slot = RedisClusterSlot.slot(of: key)
        let source = try #require(map.shard(forSlot: slot)?.primary)
        let target = try #require(map.shards.map(\.primary).first { $0 != source })
        let sourceConnection = try await Self.direct(source)
        let targetConnection = try await Self.direct(target)
        let sourceID = try #require(try await sourceConnection.send(["CLUSTER", "MYID"]).get().string)
        let targetID = try #require(try await targetConnection.send(["CLUSTER", "MYID"]).get().string)
        let others = try await map.shards.map(\.primary).filter { $0 != source && $0 != target }.asyncMap { try await Self.direct($0) }
        // The target first, then the source, then the other primaries (as the cluster specification says).
        func setSlot(_ state: [RESPArgument]) async throws {
            for connection in [targetConnection, sourceConnection] + others {
                _ = try await connection.send(["CLUSTER", "SETSLOT", .string(String(slot))] + state).get()
            }
        }
        // Migrating: the source answers ASK for a key it does not have; the client follows it.
        _ = try await targetConnection.send(["CLUSTER", "SETSLOT", .string(String(slot)), "IMPORTING", .string(sourceID)]).get()
        _ = try await sourceConnection.send(["CLUSTER", "SETSLOT", .string(String(slot)), "MIGRATING", .string(targetID)]).get()
        do {
            #expect(try await client.send(["SET", .string(key), "during", "PX", "60000"], key: key, on: loop).get() == .simpleString("OK"))
            #expect(try await targetConnection.pipeline([["ASKING"], ["GET", .string(key)]]).get().last?.string == "during")
            // Moved: the client's map is stale (it still names the source): MOVED, followed, map refreshed.
            try await setSlot(["NODE", .string(targetID)])
            #expect(client.topology?.shard(forSlot: slot)?.primary == source)
            #expect(try await client.send(["GET", .string(key)], key: key, on: loop).get().string == "during")
            // The refresh MOVED set off may have asked a node the news had not reached yet.
            for _ in 0..<100 where client.topology?.shard(forSlot: slot)?.primary != target {
                try await Task.sleep(for: .milliseconds(20))
                _ = try? await client.refresh(on: loop).get()
            }
            #expect(client.topology?.shard(forSlot: slot)?.primary == target)
        } catch {
            Issue.record("\(error)")
        }
        // Put the slot back where it was (its one key goes with it).
        _ = try? await sourceConnection.send(["CLUSTER", "SETSLOT", .string(String(slot)), "IMPORTING", .string(targetID)]).get()
        _ = try? await targetConnection.send(["CLUSTER", "SETSLOT", .string(String(slot)), "MIGRATING", .string(sourceID)]).get()
        _ = try? await targetConnection.send([
            "MIGRATE", .string(source.host), .string(String(source.port)), "", "0", "5000", "KEYS", .string(key),
        ]).get()
        _ = try? await setSlot(["NODE", .string(sourceID)])
        await client.shutdown()
        await sourceConnection.close()
        await targetConnection.close()
        for connection in others { await connection.close() }
    }

    @Test func redirectsAreDecidedAsPlainValues() {
        let node = Endpoint(host: "10.0.0.1", port: 7000)
        #expect(RedisClusterRouting.decide(errorReply: nil, answeredBy: node, redirects: 0) == .done)
        #expect(RedisClusterRouting.decide(errorReply: "WRONGTYPE no", answeredBy: node, redirects: 0) == .done)
        #expect(RedisClusterRouting.decide(errorReply: "MOVED 1 10.0.0.2:7001", answeredBy: node, redirects: 0)
            == .retry(Endpoint(host: "10.0.0.2", port: 7001), asking: false, refreshMap: true))
        #expect(RedisClusterRouting.decide(errorReply: "ASK 1 :7002", answeredBy: node, redirects: 4)
            == .retry(Endpoint(host: "10.0.0.1", port: 7002), asking: true, refreshMap: false))
        #expect(RedisClusterRouting.decide(errorReply: "MOVED 1 10.0.0.2:7001", answeredBy: node, redirects: 5) == .giveUp)
    }
}

extension Array {
    func asyncMap<T>(_ transform: (Element) async throws -> T) async rethrows -> [T] {
        var results: [T] = []
        for element in self { results.append(try await transform(element)) }
        return results
    }
}
