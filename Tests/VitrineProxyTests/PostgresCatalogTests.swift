import Foundation
import Logging
import Testing
import VitrineTestSupport
@testable import VitrineDemoOrigin
import VitrineFeed

/// The demo catalog in Postgres answers exactly as the in-memory one does, from the same seed.
@Suite(.serialized, .timeLimit(.minutes(2)))
struct PostgresCatalogTests {
    /// A catalog prepared in a fresh database; `body` runs while its pool runs.
    static func withCatalog<T: Sendable>(
        database: String, products: Int, on server: String? = nil,
        _ body: (_ catalog: PostgresCatalog, _ url: String) async throws -> T
    ) async throws -> T? {
        guard let server = server ?? TestPostgres.server else { return nil }
        let url = try await TestPostgres.freshDatabase(database, on: server)
        var logger = Logger(label: "postgres-catalog-test")
        logger.logLevel = .critical
        let catalog = PostgresCatalog(configuration: try PostgresURL(parsing: url).clientConfiguration(), logger: logger)
        let pool = Task { await catalog.run() }
        defer { pool.cancel() }
        #expect(try await catalog.prepare(seed: { DemoCatalog(productCount: products) }) == products)
        return try await body(catalog, url)
    }

    @Test func scriptsSplitIntoStatements() {
        let script = """
            -- a comment; with a semicolon
            CREATE TABLE t (a text DEFAULT 'x;y');
            CREATE FUNCTION f() RETURNS int LANGUAGE plpgsql AS $$ BEGIN RETURN 1; END; $$;
            /* block; comment */ SELECT "odd;name" FROM t;
            CREATE FUNCTION g() RETURNS int LANGUAGE sql AS $body$ SELECT 1; $body$
            -- trailing comment
            """
        let statements = SQLScript.statements(script)
        #expect(statements.count == 4)
        #expect(statements[1].hasSuffix("$$ BEGIN RETURN 1; END; $$"))
        #expect(statements[2].hasSuffix(#"SELECT "odd;name" FROM t"#))
        #expect(statements[3].hasSuffix("$body$ SELECT 1; $body$\n-- trailing comment"))
    }

    @Test func theAPIAnswersTheSameFromPostgresAsFromMemory() async throws {
        _ = try await Self.withCatalog(database: "vitrine_catalog_parity", products: 600) { catalog, url in
            let memory = DemoOriginAPI(catalog: DemoCatalog(productCount: 600))
            let postgres = DemoOriginAPI(catalog: catalog)
            var targets = [
                "/catalog/products/1", "/catalog/products/42", "/catalog/products/600", "/catalog/products/601",
                "/catalog/categories", "/catalog/categories/999/products", "/search/products?q=merino+jacket",
                "/search/products?q=merino&page=2", "/search/products?q=100%25_off", "/search/products?q=",
            ]
            for category in [1, 7, 24] {
                for sort in CatalogSort.allCases {
                    for page in 1...2 { targets.append("/catalog/categories/\(category)/products?sort=\(sort.rawValue)&page=\(page)") }
                }
            }
            for target in targets {
                let expected = await memory.handle(method: "GET", uri: target, headers: [], body: [])
                let answer = await postgres.handle(method: "GET", uri: target, headers: [], body: [])
                #expect(answer.status == expected.status, "\(target)")
                #expect(answer.body == expected.body, "\(target)")
                #expect(answer.headers.map { "\($0.0): \($0.1)" } == expected.headers.map { "\($0.0): \($0.1)" }, "\(target)")
            }

            // A write: the row changes, the answer names what it touched, the trigger recorded it.
            let write = Array(#"{"price_cents": 4242, "stock": 0}"#.utf8)
            let expected = await memory.handle(method: "PATCH", uri: "/catalog/products/42", headers: [], body: write)
            let answer = await postgres.handle(method: "PATCH", uri: "/catalog/products/42", headers: [], body: write)
            #expect(answer.status == 200)
            #expect(answer.body == expected.body)
            #expect(try await TestPostgres.psql(url, "SELECT price_cents, stock FROM products WHERE id = 42") == "4242|0")
            // Seeding recorded nothing; the write one row.
            #expect(try await TestPostgres.psql(url, "SELECT count(*) FROM vitrine_outbox") == "1")
            let category = try #require(try await catalog.product(42)).categoryID
            #expect(
                try await TestPostgres.psql(url, "SELECT array_to_string(ARRAY(SELECT unnest(tags) ORDER BY 1), ' ') FROM vitrine_outbox ORDER BY id DESC LIMIT 1")
                    == "listing:category:\(category) product:42")
            let missing = await postgres.handle(method: "PATCH", uri: "/catalog/products/9999", headers: [], body: write)
            #expect(missing.status == 404)
        }
    }

    @Test func preparingAgainKeepsTheRows() async throws {
        _ = try await Self.withCatalog(database: "vitrine_catalog_again", products: 50) { catalog, url in
            try await TestPostgres.psql(url, "UPDATE products SET price_cents = 1 WHERE id = 3")
            #expect(try await catalog.prepare(seed: { DemoCatalog(productCount: 80) }) == 50)
            #expect(try await catalog.product(3)?.priceCents == 1)
        }
    }

    @Test func aDeadDatabaseIsA503NotAHang() async throws {
        var logger = Logger(label: "postgres-catalog-test")
        logger.logLevel = .critical
        // Nothing listens on port 1.
        let catalog = PostgresCatalog(
            configuration: try PostgresURL(parsing: "postgres://vitrine@127.0.0.1:1/none").clientConfiguration(),
            queryTimeout: .milliseconds(300), logger: logger)
        let pool = Task { await catalog.run() }
        defer { pool.cancel() }
        let answer = await DemoOriginAPI(catalog: catalog).handle(method: "GET", uri: "/catalog/products/1", headers: [], body: [])
        #expect(answer.status == 503)
        #expect(answer.headers.contains { $0.0 == "Cache-Control" && $0.1 == "no-store" })
    }
}
