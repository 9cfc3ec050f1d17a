import Testing
import VitrineConfig
import VitrineCore
@testable import VitrineNode
@testable import VitrineProxy

/// What `vitrine purge` and `vitrine stats` do, against a real node's admin API.
@Suite(.timeLimit(.minutes(1)))
struct AdminClientTests {
    @Test func aPurgeByTagReachesTheNode() async throws {
        try await HeaderHandlingTests.withEcho { fixture, _ in
            let target = HeaderHandlingTests.target("/echo/tagged", ["Surrogate-Key:product:7", "Cache-Control:max-age=60"])
            #expect(try await fixture.get(target).header("X-Cache") == "MISS")
            #expect(try await fixture.get(target).header("X-Cache") == "HIT")
            let client = try AdminClient(url: "http://127.0.0.1:\(fixture.adminPort)", token: ProxyFixture.token)
            let answer = try await client.purge(tags: ["product:7"], keys: [], prefixes: [], soft: false)
            #expect(answer.contains("\"purged\":1"), "\(answer)")
            #expect(try await fixture.get(target).header("X-Cache") == "MISS")
            // A key purge, with a quote and a control character in a tag that matches nothing.
            let byKey = try await client.purge(tags: ["a\"b\u{1}"], keys: [target], prefixes: [], soft: true)
            #expect(byKey.contains("\"keys\":1"), "\(byKey)")
            #expect(try await client.stats().contains("\"purges\":2"))
        }
    }

    @Test func aWrongTokenIsTheAdminAPIsRefusal() async throws {
        try await ProxyFixture.with { fixture in
            let client = try AdminClient(url: "http://127.0.0.1:\(fixture.adminPort)", token: "not-the-token-0123456789")
            await #expect(throws: AdminClient.Failure.self) { try await client.stats() }
            do {
                _ = try await client.stats()
            } catch let failure as AdminClient.Failure {
                #expect(failure.description.contains("401"))
            }
        }
    }

    /// A timeout under a second is a timeout, not zero.
    @Test func aSubSecondTimeoutStillWaitsForTheAnswer() async throws {
        try await ProxyFixture.with { fixture in
            let client = try AdminClient(url: "http://127.0.0.1:\(fixture.adminPort)", token: ProxyFixture.token, timeout: .milliseconds(900))
            #expect(try await client.stats().contains("\"requests\""))
        }
    }

    @Test func nobodyListeningIsSaidPlainly() async throws {
        let client = try AdminClient(url: "http://127.0.0.1:9", token: "t", timeout: .seconds(2))
        await #expect(throws: AdminClient.Failure.self) { try await client.stats() }
    }

    @Test(arguments: ["127.0.0.1:8081", "ftp://h:1", "http://host", "http://host:0", "http://:80", "http://h:99999"])
    func aBadAdminURLIsRefused(_ url: String) {
        #expect(throws: AdminClient.Failure.self) { try AdminClient(url: url, token: "t") }
    }

    @Test func anIPv6AdminURLIsRead() throws {
        let client = try AdminClient(url: "http://[::1]:8081/", token: "t")
        #expect(client.host == "::1")
        #expect(client.port == 8081)
    }
}
