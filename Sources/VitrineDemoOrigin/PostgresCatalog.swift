import Logging
import NIOCore
import PostgresNIO
import VitrineDeadline

/// The demo catalog in Postgres tables (`config/postgres/catalog-schema.sql`), with the change
/// feed's outbox and the catalog triggers installed: a write through the API updates a row, the
/// trigger records the tags it touched, and every Vitrine node listening purges them.
///
/// Every read is a query, so a change committed by anyone (`psql`, another service) shows on the
/// next origin fetch. A call that gets no answer within `queryTimeout` (Postgres down: the pool
/// keeps retrying for a minute) fails, so the API answers 503 at once instead of hanging.
public final class PostgresCatalog: CatalogStore {
    private let client: PostgresClient
    private let logger: Logger
    private let queryTimeout: Duration

    public init(configuration: PostgresClient.Configuration, queryTimeout: Duration = .seconds(5), logger: Logger) {
        self.client = PostgresClient(configuration: configuration, backgroundLogger: logger)
        self.queryTimeout = queryTimeout
        self.logger = logger
    }

    /// Runs the connection pool until cancelled; queries wait for it.
    public func run() async {
        await client.run()
    }

    /// Creates the tables, the outbox and the triggers (all idempotent), and seeds the tables from
    /// `seed` when they are empty. Returns how many products the catalog has.
    public func prepare(seed: @Sendable () -> DemoCatalog) async throws -> Int {
        try await client.withConnection { connection in
            for script in [PackageResources.catalog_schema_sql, PackageResources.vitrine_sql, PackageResources.catalog_triggers_sql] {
                for statement in SQLScript.statements(String(decoding: script, as: UTF8.self)) {
                    _ = try await connection.query(PostgresQuery(unsafeSQL: statement), logger: logger).collect()
                }
            }
            _ = try await connection.query("BEGIN", logger: logger).collect()
            do {
                // Two demos starting on one database: the second waits, then finds the rows.
                _ = try await connection.query("LOCK TABLE categories, products IN EXCLUSIVE MODE", logger: logger).collect()
                var count = try await Self.productCount(connection, logger: logger)
                if count == 0 {
                    let catalog = seed()
                    logger.info("seeding the Postgres catalog", metadata: ["products": "\(catalog.productCount)"])
                    // Seeding is not a change anyone has cached: no outbox rows for it.
                    _ = try await connection.query("ALTER TABLE categories DISABLE TRIGGER USER", logger: logger).collect()
                    _ = try await connection.query("ALTER TABLE products DISABLE TRIGGER USER", logger: logger).collect()
                    try await Self.copy(catalog, into: connection, logger: logger)
                    _ = try await connection.query("ALTER TABLE categories ENABLE TRIGGER USER", logger: logger).collect()
                    _ = try await connection.query("ALTER TABLE products ENABLE TRIGGER USER", logger: logger).collect()
                    count = catalog.productCount
                }
                _ = try await connection.query("COMMIT", logger: logger).collect()
                return count
            } catch {
                _ = try? await connection.query("ROLLBACK", logger: logger).collect()
                throw error
            }
        }
    }

    private static func productCount(_ connection: PostgresConnection, logger: Logger) async throws -> Int {
        for try await count in try await connection.query("SELECT count(*) FROM products", logger: logger).decode(Int.self) {
            return count
        }
        return 0
    }

    /// Seeds with `COPY FROM` (text format): 10,000 products in a fraction of a second.
    private static func copy(_ catalog: DemoCatalog, into connection: PostgresConnection, logger: Logger) async throws {
        try await connection.copyFrom(table: "categories", columns: ["id", "name"], logger: logger) { writer in
            var buffer = ByteBuffer()
            for category in catalog.categories { CopyText.row(&buffer, ["\(category.id)", category.name]) }
            try await writer.write(buffer)
        }
        let columns = ["id", "name", "description", "price_cents", "stock", "category_id", "brand", "rating", "color", "material"]
        try await connection.copyFrom(table: "products", columns: columns, logger: logger) { writer in
            var buffer = ByteBuffer()
            for product in catalog.allProducts {
                CopyText.row(
                    &buffer,
                    [
                        "\(product.id)", product.name, product.description, "\(product.priceCents)", "\(product.stock)",
                        "\(product.categoryID)", product.brand, "\(product.rating)", product.color, product.material,
                    ])
                if buffer.readableBytes > 1 << 20 {
                    try await writer.write(buffer)
                    buffer.clear()
                }
            }
            try await writer.write(buffer)
        }
    }

    // MARK: CatalogStore

    private static let productColumns = "id, name, description, price_cents, stock, category_id, brand, rating, color, material"

    private func products(_ query: PostgresQuery) async throws -> [DemoProduct] {
        var products: [DemoProduct] = []
        let rows = try await client.query(query, logger: logger)
        for try await (id, name, description, price, stock, category, brand, rating, color, material) in rows.decode(
            (Int, String, String, Int, Int, Int, String, Double, String, String).self)
        {
            products.append(
                DemoProduct(
                    id: id, name: name, description: description, priceCents: price, stock: stock, categoryID: category,
                    brand: brand, rating: rating, color: color, material: material))
        }
        return products
    }

    private func count(_ query: PostgresQuery) async throws -> Int? {
        for try await count in try await client.query(query, logger: logger).decode(Int.self) { return count }
        return nil
    }

    public func product(_ id: Int) async throws -> DemoProduct? {
        try await bounded { try await self.product(unbounded: id) }
    }

    private func product(unbounded id: Int) async throws -> DemoProduct? {
        try await products("SELECT \(unescaped: Self.productColumns) FROM products WHERE id = \(id)").first
    }

    public func updateProduct(_ id: Int, priceCents: Int?, stock: Int?) async throws -> DemoProduct? {
        try await bounded { try await self.updateProduct(unbounded: id, priceCents: priceCents, stock: stock) }
    }

    private func updateProduct(unbounded id: Int, priceCents: Int?, stock: Int?) async throws -> DemoProduct? {
        try await products(
            """
            UPDATE products SET price_cents = coalesce(\(priceCents), price_cents), stock = coalesce(\(stock), stock)
            WHERE id = \(id) RETURNING \(unescaped: Self.productColumns)
            """
        ).first
    }

    public func categorySummaries() async throws -> [CategorySummary] {
        try await bounded { try await self.categorySummariesUnbounded() }
    }

    private func categorySummariesUnbounded() async throws -> [CategorySummary] {
        var summaries: [CategorySummary] = []
        let rows = try await client.query(
            """
            SELECT c.id, c.name, (SELECT count(*) FROM products p WHERE p.category_id = c.id)
            FROM categories c ORDER BY c.id
            """, logger: logger)
        for try await (id, name, count) in rows.decode((Int, String, Int).self) {
            summaries.append(CategorySummary(category: DemoCategory(id: id, name: name), productCount: count))
        }
        return summaries
    }

    public func listing(category: Int, sort: CatalogSort, page: Int, perPage: Int) async throws -> CatalogPage? {
        try await bounded { try await self.listing(unbounded: category, sort: sort, page: page, perPage: perPage) }
    }

    private func listing(unbounded category: Int, sort: CatalogSort, page: Int, perPage: Int) async throws -> CatalogPage? {
        guard
            let total = try await count(
                "SELECT (SELECT count(*) FROM products WHERE category_id = c.id) FROM categories c WHERE c.id = \(category)")
        else { return nil }
        // The same orders as the in-memory catalog: ties by id, names by code point ("C").
        let order: String
        switch sort {
        case .priceAscending: order = "price_cents, id"
        case .priceDescending: order = "price_cents DESC, id"
        case .name: order = "name COLLATE \"C\", id"
        }
        let items = try await products(
            """
            SELECT \(unescaped: Self.productColumns) FROM products WHERE category_id = \(category)
            ORDER BY \(unescaped: order) LIMIT \(perPage) OFFSET \((page - 1) * perPage)
            """)
        return CatalogPage(items: items, total: total)
    }

    public func search(_ query: String, page: Int, perPage: Int) async throws -> CatalogPage {
        try await bounded { try await self.search(unbounded: query, page: page, perPage: perPage) }
    }

    private func search(unbounded query: String, page: Int, perPage: Int) async throws -> CatalogPage {
        let patterns = SearchTerms.split(query).map { "%" + Self.escapeLike($0) + "%" }
        let total = try await count(
            "SELECT count(*) FROM products WHERE lower(name || ' ' || description) LIKE ALL (\(patterns)::text[])") ?? 0
        let items = try await products(
            """
            SELECT \(unescaped: Self.productColumns) FROM products
            WHERE lower(name || ' ' || description) LIKE ALL (\(patterns)::text[])
            ORDER BY id LIMIT \(perPage) OFFSET \((page - 1) * perPage)
            """)
        return CatalogPage(items: items, total: total)
    }

    /// `work`'s result, or `DeadlineExceeded` after `queryTimeout`.
    private func bounded<T: Sendable>(_ work: @escaping @Sendable () async throws -> T) async throws -> T {
        try await withDeadline(queryTimeout, work)
    }

    /// A search word as a literal `LIKE` pattern (default escape character `\`).
    static func escapeLike(_ term: String) -> String {
        var escaped = ""
        for character in term {
            if character == "%" || character == "_" || character == "\\" { escaped.append("\\") }
            escaped.append(character)
        }
        return escaped
    }
}

/// Rows in `COPY`'s text format: tab-separated, backslash escapes.
enum CopyText {
    static func row(_ buffer: inout ByteBuffer, _ fields: [String]) {
        for (index, field) in fields.enumerated() {
            if index > 0 { buffer.writeInteger(UInt8(ascii: "\t")) }
            for byte in field.utf8 {
                switch byte {
                case UInt8(ascii: "\\"): buffer.writeStaticString("\\\\")
                case UInt8(ascii: "\t"): buffer.writeStaticString("\\t")
                case UInt8(ascii: "\n"): buffer.writeStaticString("\\n")
                case UInt8(ascii: "\r"): buffer.writeStaticString("\\r")
                default: buffer.writeInteger(byte)
                }
            }
        }
        buffer.writeInteger(UInt8(ascii: "\n"))
    }
}
