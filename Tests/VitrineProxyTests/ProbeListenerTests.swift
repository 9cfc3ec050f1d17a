import Testing
import VitrineConfig
import VitrineCore
@testable import VitrineNode
@testable import VitrineProxy

/// The probe listener (`probes.listen`): health, readiness and metrics without a token, for a
/// kubelet, a load balancer's health check or a Prometheus scrape; nothing else is there, and
/// the admin listener still wants its token for everything.
@Suite(.timeLimit(.minutes(1)))
struct ProbeListenerTests {
    static func withProbes(_ body: (ProxyFixture, Int) async throws -> Void) async throws {
        try await ProxyFixture.with(configure: { configuration in
            configuration.probes = ProbeSettings(listen: ListenAddress(host: "127.0.0.1", port: 0))
        }) { fixture in
            let port = try #require(fixture.probePort)
            try await body(fixture, port)
        }
    }

    static func probe(_ port: Int, _ method: String, _ target: String) async throws -> WireResponse {
        try await WireConnection.with(port: port) { try await $0.request(method, target, headers: [], body: nil) }
    }

    @Test func probesAnswerWithoutAToken() async throws {
        try await Self.withProbes { fixture, port in
            #expect(try await fixture.get("/catalog/products/1").status == 200)
            let health = try await Self.probe(port, "GET", "/healthz")
            #expect(health.status == 200)
            let ready = try await Self.probe(port, "GET", "/readyz")
            #expect(ready.status == 200)
            #expect(ready.text.contains("\"ready\":true"))
            let metrics = try await Self.probe(port, "GET", "/metrics")
            #expect(metrics.status == 200)
            #expect(metrics.text.contains("vitrine_requests_total"))
        }
    }

    @Test(arguments: [("GET", "/stats"), ("POST", "/purge"), ("PURGE", "/catalog/products/1"), ("POST", "/healthz"), ("GET", "/")])
    func nothingElseIsOnTheProbeListener(_ method: String, _ target: String) async throws {
        try await Self.withProbes { fixture, port in
            #expect(try await fixture.get("/catalog/products/1").status == 200)
            let answer = try await Self.probe(port, method, target)
            #expect(answer.status == 404, "\(method) \(target)")
            #expect(try await fixture.get("/catalog/products/1").header("X-Cache") == "HIT", "nothing was purged")
        }
    }

    @Test func theAdminListenerStillWantsItsToken() async throws {
        try await Self.withProbes { fixture, _ in
            let withoutToken = try await fixture.admin("GET", "/healthz", authorized: false)
            #expect(withoutToken.status == 401)
            let withToken = try await fixture.admin("GET", "/healthz")
            #expect(withToken.status == 200)
        }
    }

    @Test func withoutProbesThereIsNoProbeListener() async throws {
        try await ProxyFixture.with { fixture in
            #expect(fixture.probePort == nil)
        }
    }
}
