import Foundation
import Testing
import VitrineTestSupport
import VitrineConfig
@testable import VitrineProxy

/// A change committed in Postgres purges what the proxy serves, through the change feed.
@Suite(.timeLimit(.minutes(1)))
struct ChangeFeedEndToEndTests {
    @Test func aCommittedInvalidationPurgesTheProxy() async throws {
        guard let server = TestPostgres.server else { return }
        let url = try await TestPostgres.freshDatabase("vitrine_feed_e2e", on: server)
        try await TestPostgres.psql(url, file: TestPostgres.sqlFile("vitrine.sql"))
        let cursorFile = FileManager.default.temporaryDirectory.appendingPathComponent("vitrine-e2e-\(UUID().uuidString).cursor").path

        try await ProxyFixture.with(configure: { configuration in
            var settings = PostgresSettings(url: url)
            settings.cursorFile = cursorFile
            configuration.postgres = settings
        }) { (fixture: ProxyFixture) async throws -> Void in
            try await SharedTierTests.waitUntil {
                let stats = try await fixture.admin("GET", "/stats")
                return stats.text.contains(#""feed":{"state":"connected""#)
            }
            _ = try await fixture.get("/catalog/products/7")
            #expect(try await fixture.get("/catalog/products/7").header("X-Cache") == "HIT")
            try await TestPostgres.psql(url, "SELECT vitrine_invalidate(ARRAY['product:7'])")
            try await SharedTierTests.waitUntil { try await fixture.get("/catalog/products/7").header("X-Cache") == "MISS" }
            let stats = try await fixture.admin("GET", "/stats")
            let feed = (try JSONSerialization.jsonObject(with: Data(stats.body)) as! [String: Any])["feed"] as! [String: Any]
            #expect(feed["applied"] as? Int == 1)
            #expect((feed["cursor"] as? Int ?? 0) >= 1)
            #expect(feed["lag_rows"] as? Int == 0)
            let metrics = try await fixture.admin("GET", "/metrics").text
            #expect(metrics.contains("vitrine_feed_connected 1"))
            #expect(metrics.contains("vitrine_feed_applied_rows_total 1"))
        }
    }

    /// Without Redis the cursor is a file in the state directory, which is created if missing,
    /// and the saved cursor names the outbox it belongs to.
    @Test func theCursorIsKeptInTheStateDirectory() async throws {
        guard let server = TestPostgres.server else { return }
        let url = try await TestPostgres.freshDatabase("vitrine_feed_state_dir", on: server)
        try await TestPostgres.psql(url, file: TestPostgres.sqlFile("vitrine.sql"))
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("vitrine-state-\(UUID().uuidString)/node").path
        defer { try? FileManager.default.removeItem(atPath: (directory as NSString).deletingLastPathComponent) }
        try await ProxyFixture.with(configure: { configuration in
            configuration.postgres = PostgresSettings(url: url)
            configuration.stateDirectory = directory
        }) { (fixture: ProxyFixture) async throws -> Void in
            let file = directory + "/feed-vitrine_invalidations.cursor"
            try await SharedTierTests.waitUntil { FileManager.default.fileExists(atPath: file) }
            let saved = try String(contentsOfFile: file, encoding: .utf8)
            let identity = try await TestPostgres.psql(
                url,
                "SELECT system_identifier::text FROM pg_control_system()"
            ).trimmingCharacters(in: .whitespacesAndNewlines)
            #expect(saved.hasPrefix("vitrine-cursor 2 \(identity):"), "\(saved)")
            #expect(try await fixture.admin("GET", "/stats").text.contains(#""pending_transactions":"#))
        }
    }
}
