import Foundation
import NIOCore
import Synchronization
import Testing
import NIOPosix
import VitrineConfig
import VitrineRedis
import VitrineTestSupport

/// Two proxy nodes on a Redis Cluster of the test's own, the scratch cluster (killing a node of the
/// shared one would break the tests beside): it is resharded, then a primary is killed, while
/// requests run.
@Suite(.timeLimit(.minutes(2)))
struct ClusterTierTests {
    static let script = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("../../scripts/test-services.sh")
        .standardized.path

    /// The scratch cluster `make test` starts for this test (3 primaries, 3 replicas), or one
    /// started now (outside `make test`); its seed list, and where it lives when started here.
    static func ownCluster() async throws -> (seeds: String, directory: String?, nodes: String)? {
        let environment = ProcessInfo.processInfo.environment
        if let scratch = environment["VITRINE_TEST_REDIS_SCRATCH_CLUSTER"], let nodes = environment["VITRINE_TEST_REDIS_SCRATCH_CLUSTER_DIR"] {
            return (scratch, nil, nodes)
        }
        guard environment["VITRINE_TEST_REDIS_CLUSTER"] != nil else {
            if environment["CI"] == "true" { Issue.record("VITRINE_TEST_REDIS_SCRATCH_CLUSTER is not set: use `make test`") }
            return nil
        }
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("vitrine-cluster-\(UUID().uuidString)").path
        let output = try await TestCommand.run([script, "redis-cluster", directory])
        let seeds = try #require(output.split(separator: "\n").last.map(String.init))
        return (seeds, directory, directory + "/cluster")
    }

    static func port(_ endpoint: String) -> String { String(endpoint.split(separator: ":").last ?? "") }

    /// The shards `/stats` shows.
    static func shardList(_ fixture: ProxyFixture) async throws -> [[String: Any]] {
        let stats = try await fixture.admin("GET", "/stats")
        let json = try JSONSerialization.jsonObject(with: Data(stats.body)) as? [String: Any]
        return ((json?["redis"] as? [String: Any])?["shards"] as? [[String: Any]]) ?? []
    }

    /// The primary serving `key`'s slot, as the cluster says now.
    static func primary(forKey key: String, seed: String) async throws -> RedisClusterTopology.Endpoint {
        let endpoint = RedisClusterTopology.Endpoint(host: "127.0.0.1", port: Int(port(seed)) ?? 0)
        let connection = try await RedisConnection.connect(
            to: RedisURL(host: endpoint.host, port: endpoint.port), on: MultiThreadedEventLoopGroup.singleton.next())
        let reply = try await connection.send(["CLUSTER", "SLOTS"]).get()
        await connection.close()
        let topology = try RedisClusterTopology(clusterSlots: reply, answeredBy: endpoint)
        return try #require(topology.shard(forSlot: RedisClusterSlot.slot(of: key))?.primary)
    }

    /// A fetches a product, B asks for it: until B's answer comes from L2. Each try takes a
    /// product of its own: one that B had to fetch itself (A's write to L2 is in the background,
    /// and may not have landed) stays in B's L1, and would never come from L2 again.
    static func fetchedByAFoundInL2ByB(_ a: ProxyFixture, _ b: ProxyFixture, from first: Int, seconds: Int) async throws {
        let next = Atomic<Int>(first)
        try await SharedTierTests.waitUntil(seconds: seconds) {
            let id = next.add(1, ordering: .relaxed).newValue
            _ = try await a.get("/catalog/products/\(id)")
            try await Task.sleep(for: .milliseconds(20))
            return try await b.get("/catalog/products/\(id)").header("Cache-Status")?.contains("detail=l2") == true
        }
    }

    @Test func aReshardAndAFailoverUnderLoadLoseNoRequestAndTheTierComesBack() async throws {
        guard let cluster = try await Self.ownCluster() else { return }
        defer { if let directory = cluster.directory { _ = try? TestCommand.runBlocking([Self.script, "stop", directory]) } }
        let channel = "vitrine-test:failover"
        let redis = SharedTierTests.TestRedis(url: "redis-cluster://\(cluster.seeds)", channel: channel)
        try await SharedTierTests.withTwoNodes(originURL: nil, redis: redis) { a, b in
            // The map: three shards, every slot served, each primary answering.
            // (A node an earlier run restarted may take a few seconds to be a replica again.)
            try await SharedTierTests.waitUntil(seconds: 20) {
                let shards = try await Self.shardList(a)
                return shards.count == 3 && shards.allSatisfy { ($0["replicas"] as? [String])?.count == 1 }
            }
            let before = try await Self.shardList(a)
            #expect(before.compactMap { $0["slots"] as? Int }.reduce(0, +) == 16_384, "\(before)")
            #expect(before.allSatisfy { $0["state"] as? String == "up" && ($0["replicas"] as? [String])?.count == 1 }, "\(before)")

            // Forty products in A's L1 (and in L2), then read from A all along.
            for id in 1...40 { #expect(try await a.get("/catalog/products/\(id)").status == 200) }
            for id in 1...40 { #expect(try await a.get("/catalog/products/\(id)").header("X-Cache") == "HIT") }
            let failures = Atomic<Int>(0)
            let served = Atomic<Int>(0)
            let running = Atomic<Bool>(true)
            let load = Task {
                while running.load(ordering: .relaxed) {
                    for id in 1...40 {
                        let answer = try? await a.get("/catalog/products/\(id)")
                        if answer?.status == 200 { served.add(1, ordering: .relaxed) } else { failures.add(1, ordering: .relaxed) }
                    }
                    // And B: what A fetched comes from L2 (or, while its shard is away, the origin).
                    for id in 41...60 {
                        let answer = try? await b.get("/catalog/products/\(id)")
                        if answer?.status == 200 { served.add(1, ordering: .relaxed) } else { failures.add(1, ordering: .relaxed) }
                    }
                    // Steady, not flat out: the suites beside this one share the machine's two cores.
                    try? await Task.sleep(for: .milliseconds(50))
                }
            }

            // A reshard while the load runs: 1,000 slots (keys and all) from the shard of the
            // channel's slot to another; commands meet ASK and MOVED, and follow them.
            let seed = try #require(cluster.seeds.split(separator: ",").first.map(String.init))
            let from = try await Self.primary(forKey: channel, seed: seed).description
            let to = try #require(before.compactMap { $0["primary"] as? String }.first { $0 != from })
            // 1,000 slots, or half of what `from` serves when an earlier run against this cluster
            // left it fewer.
            let slotsOf = { (primary: String) in before.first { $0["primary"] as? String == primary }?["slots"] as? Int ?? 0 }
            let moved = min(1_000, slotsOf(from) / 2)
            let toBefore = slotsOf(to)
            let fromID = try await TestCommand.run(["redis-cli", "-p", Self.port(from), "cluster", "myid"])
            let toID = try await TestCommand.run(["redis-cli", "-p", Self.port(to), "cluster", "myid"])
            try await TestCommand.run([
                "redis-cli", "--cluster", "reshard", seed, "--cluster-from", fromID, "--cluster-to", toID, "--cluster-slots", String(moved),
                "--cluster-yes",
            ])
            // (Counted from what `to` served before: a cluster left uneven by an earlier run of this
            // test is resharded the same.)
            try await SharedTierTests.waitUntil(seconds: 15) {
                try await Self.shardList(a).contains { $0["primary"] as? String == to && ($0["slots"] as? Int ?? 0) >= toBefore + moved }
            }
            // Fetched after the reshard on A, found in L2 by B.
            try await Self.fetchedByAFoundInL2ByB(a, b, from: 100, seconds: 10)

            // B holds product 5 in its L1; then the primary serving the fan-out channel is killed.
            try await SharedTierTests.waitUntil { try await b.get("/catalog/products/5").header("X-Cache") == "HIT" }
            let owner = try await Self.primary(forKey: channel, seed: seed).description
            _ = try? await TestCommand.run(["redis-cli", "-p", Self.port(owner), "shutdown", "nosave"])
            let killed = ContinuousClock.now

            // Its replica is promoted; the nodes see the new map, and the tier serves again.
            try await SharedTierTests.waitUntil(seconds: 30) {
                let shards = try await Self.shardList(a)
                return shards.count == 3 && !shards.contains { $0["primary"] as? String == owner } && shards.allSatisfy { $0["state"] as? String == "up" }
            }
            let promoted = ContinuousClock.now - killed
            try await Self.fetchedByAFoundInL2ByB(a, b, from: 1_000, seconds: 30)
            let tierBack = ContinuousClock.now - killed
            // Fan-out again, from the promoted replica: a purge on A reaches B's L1 (B's next answer
            // is fetched anew, or is what A fetched after the purge, from L2: A reads it all along).
            #expect(try await a.admin("POST", "/purge", body: #"{"tags":["product:5"]}"#).status == 200)
            try await SharedTierTests.waitUntil(seconds: 30) {
                let answer = try await b.get("/catalog/products/5")
                return answer.header("X-Cache") == "MISS" || answer.header("Cache-Status")?.contains("detail=l2") == true
            }
            let recovered = ContinuousClock.now - killed
            running.store(false, ordering: .relaxed)
            await load.value

            // Started again (it rejoins as a replica of the node promoted in its place): the cluster
            // is whole for a next run against the same servers.
            try await TestCommand.run([Self.script, "redis-cluster-node", cluster.nodes, Self.port(owner)])
            #expect(failures.load(ordering: .relaxed) == 0, "requests failed during the reshard and the failover")
            #expect(served.load(ordering: .relaxed) > 200)
            // Promotion takes the cluster 2-5 s (cluster-node-timeout 2 s); the nodes follow within a
            // map refresh and a resubscription's backoff.
            #expect(recovered < .seconds(15), "the tier and the fan-out came back after \(recovered)")
            print(
                "cluster failover: after the primary was killed, the map named its replica in \(promoted), L2 served again in \(tierBack),"
                    + " the fan-out was back in \(recovered); \(served.load(ordering: .relaxed)) requests served, \(failures.load(ordering: .relaxed)) failed")
            let metrics = try await a.admin("GET", "/metrics").text
            #expect(metrics.contains("vitrine_redis_shard_up{primary=\""), "\(metrics.prefix(200))")
            #expect(metrics.contains("vitrine_redis_up 1"))
        }
    }
}
