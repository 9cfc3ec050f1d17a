import Foundation
import Testing
import VitrineConfig
@testable import VitrineProxy

/// A change committed in Postgres purges what the proxy serves, through the change feed.
@Suite(.timeLimit(.minutes(1)))
struct ChangeFeedEndToEndTests {
    /// Runs `sql` through psql against `url`.
    static func psql(_ url: String, _ sql: String) throws {
        let process = Process()
        process.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        process.arguments = ["psql", url, "-v", "ON_ERROR_STOP=1", "-q", "-c", sql]
        process.standardOutput = FileHandle.nullDevice
        process.standardError = FileHandle.nullDevice
        try process.run()
        process.waitUntilExit()
        #expect(process.terminationStatus == 0, "psql: \(sql)")
    }

    @Test func aCommittedInvalidationPurgesTheProxy() async throws {
        guard let server = ProcessInfo.processInfo.environment["VITRINE_TEST_POSTGRES_URL"] else {
            if ProcessInfo.processInfo.environment["CI"] == "true" { Issue.record("VITRINE_TEST_POSTGRES_URL is not set: use `make test`") }
            return
        }
        try Self.psql(server, "DROP DATABASE IF EXISTS vitrine_feed_e2e")
        try Self.psql(server, "CREATE DATABASE vitrine_feed_e2e")
        let url = server.replacingOccurrences(of: "/postgres", with: "/vitrine_feed_e2e")
        let sql = URL(fileURLWithPath: #filePath).deletingLastPathComponent().appendingPathComponent("../../config/postgres/vitrine.sql")
        let install = Process()
        install.executableURL = URL(fileURLWithPath: "/usr/bin/env")
        install.arguments = ["psql", url, "-q", "-v", "ON_ERROR_STOP=1", "-f", sql.standardized.path]
        install.standardOutput = FileHandle.nullDevice
        install.standardError = FileHandle.nullDevice
        try install.run()
        install.waitUntilExit()
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
            try Self.psql(url, "SELECT vitrine_invalidate(ARRAY['product:7'])")
            try await SharedTierTests.waitUntil { try await fixture.get("/catalog/products/7").header("X-Cache") == "MISS" }
            let stats = try await fixture.admin("GET", "/stats")
            let feed = (try JSONSerialization.jsonObject(with: Data(stats.body)) as! [String: Any])["feed"] as! [String: Any]
            #expect(feed["applied"] as? Int == 1)
            #expect((feed["cursor"] as? Int ?? 0) >= 1)
        }
    }
}
