import Foundation
import Testing
import VitrineTestSupport

/// The SQL an origin installs (`config/postgres/`), against the real Postgres that `make test`
/// starts (`VITRINE_TEST_POSTGRES_URL`), through `psql`. In CI a missing server is a failure.
@Suite(.serialized, .timeLimit(.minutes(1)))
struct ChangeFeedSQLTests {
    /// A fresh database with the schema and the SQL installed twice (it must be idempotent).
    static func freshDatabase(_ name: String) async throws -> String? {
        guard let server = TestPostgres.server else { return nil }
        let url = try await TestPostgres.freshDatabase(name, on: server)
        for file in ["catalog-schema.sql", "vitrine.sql", "catalog-triggers.sql", "vitrine.sql", "catalog-triggers.sql"] {
            try await TestPostgres.psql(url, file: TestPostgres.sqlFile(file))
        }
        return url
    }

    @discardableResult
    static func psql(_ url: String, _ sql: String) async throws -> String { try await TestPostgres.psql(url, sql) }

    static func outbox(_ url: String) async throws -> [String] {
        try await psql(url, "SELECT array_to_string(ARRAY(SELECT unnest(tags) ORDER BY 1), ' ') FROM vitrine_outbox ORDER BY id")
            .split(separator: "\n").map(String.init).filter { !$0.contains("NOTICE") }
    }

    @Test func rowChangesBecomeTagsOldAndNew() async throws {
        guard let url = try await Self.freshDatabase("vitrine_sql_tags") else { return }
        try await Self.psql(url, "INSERT INTO categories VALUES (7, 'Tents'), (8, 'Boots')")
        try await Self.psql(url, "INSERT INTO products VALUES (42, 'Tent', '', 1000, 5, 7)")
        try await Self.psql(url, "UPDATE products SET price_cents = 900 WHERE id = 42")
        try await Self.psql(url, "UPDATE products SET category_id = 8 WHERE id = 42")
        try await Self.psql(url, "INSERT INTO product_categories VALUES (42, 7)")
        try await Self.psql(url, "INSERT INTO prices VALUES (42, 'default', 950)")
        try await Self.psql(url, "INSERT INTO inventory VALUES (42, 'main', 3)")
        try await Self.psql(url, "DELETE FROM products WHERE id = 42")
        #expect(try await Self.outbox(url) == [
            "categories category:7 listing:category:7",  // category 7 created
            "categories category:8 listing:category:8",  // category 8 created
            "categories listing:category:7 product:42",  // product created in 7
            "listing:category:7 product:42",  // price changed: its page and its listing
            "categories listing:category:7 listing:category:8 product:42",  // moved 7 → 8: old and new listings
            "categories listing:category:7 product:42",  // also linked to 7
            "listing:category:7 listing:category:8 product:42",  // price list row: every listing it is in
            "listing:category:7 listing:category:8 product:42",  // inventory row: the same
            "categories listing:category:8 product:42",  // product deleted
            "categories listing:category:7 product:42",  // its link to 7 deleted by the cascade
            "product:42",  // its price row deleted by the cascade
            "product:42",  // its inventory row deleted by the cascade
        ])
    }

    @Test func nothingIsRecordedForARolledBackChange() async throws {
        guard let url = try await Self.freshDatabase("vitrine_sql_rollback") else { return }
        try await Self.psql(url, "INSERT INTO categories VALUES (1, 'A')")
        let before = try await Self.outbox(url).count
        try await Self.psql(url, "BEGIN; INSERT INTO products VALUES (1, 'P', '', 100, 1, 1); ROLLBACK;")
        #expect(try await Self.outbox(url).count == before)
    }

    @Test func theChannelIsNotifiedAtCommitWithTheOutboxID() async throws {
        guard let url = try await Self.freshDatabase("vitrine_sql_notify") else { return }
        let output = try await Self.psql(url, "LISTEN vitrine_invalidations; SELECT vitrine_invalidate(ARRAY['product:1']); SELECT 1;")
        let id = try await Self.psql(url, "SELECT max(id) FROM vitrine_outbox").trimmingCharacters(in: .whitespacesAndNewlines)
        #expect(output.contains("Asynchronous notification \"vitrine_invalidations\" with payload \"\(id)\""), "\(output)")
        // Empty tag lists record nothing.
        #expect(try await Self.psql(url, "SELECT vitrine_invalidate('{}') IS NULL").contains("t"))
    }

    @Test func oldRowsArePruned() async throws {
        guard let url = try await Self.freshDatabase("vitrine_sql_prune") else { return }
        try await Self.psql(url, "SELECT vitrine_invalidate(ARRAY['a']); SELECT vitrine_invalidate(ARRAY['b']);")
        try await Self.psql(url, "UPDATE vitrine_outbox SET created_at = now() - interval '8 days' WHERE tags = ARRAY['a']")
        #expect(try await Self.psql(url, "SELECT vitrine_prune_outbox()").trimmingCharacters(in: .whitespacesAndNewlines) == "1")
        #expect(try await Self.outbox(url) == ["b"])
    }
}
