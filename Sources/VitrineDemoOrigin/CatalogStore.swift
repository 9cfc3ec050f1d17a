/// Where the demo origin keeps its catalog: in memory (`DemoCatalog`, the default) or in
/// Postgres tables (`PostgresCatalog`, `--postgres`), behind the same HTTP API.
public protocol CatalogStore: Sendable {
    /// The product, or nil for an unknown id.
    func product(_ id: Int) async throws -> DemoProduct?
    /// Changes a product's price and/or stock; nil for an unknown id.
    func updateProduct(_ id: Int, priceCents: Int?, stock: Int?) async throws -> DemoProduct?
    /// Every category, by id, with how many products it has.
    func categorySummaries() async throws -> [CategorySummary]
    /// One page of a category's products and the category's total; nil for an unknown category.
    func listing(category: Int, sort: CatalogSort, page: Int, perPage: Int) async throws -> CatalogPage?
    /// Products whose name or description contains every word of `query` (case-insensitive), by id.
    func search(_ query: String, page: Int, perPage: Int) async throws -> CatalogPage
}

/// A category and its size, as the category list shows them.
public struct CategorySummary: Sendable, Equatable {
    public let category: DemoCategory
    public let productCount: Int

    public init(category: DemoCategory, productCount: Int) {
        self.category = category
        self.productCount = productCount
    }
}

/// One page of products and the total they were taken from.
public struct CatalogPage: Sendable, Equatable {
    public let items: [DemoProduct]
    public let total: Int

    public init(items: [DemoProduct], total: Int) {
        self.items = items
        self.total = total
    }
}

/// The orders a listing can take.
public enum CatalogSort: String, Sendable, CaseIterable {
    case priceAscending = "price_asc"
    case priceDescending = "price_desc"
    case name
}

/// Search words as both catalogs match them: lower-cased, split on spaces and `+`.
enum SearchTerms {
    static func split(_ query: String) -> [String] {
        query.lowercased().split(whereSeparator: { $0 == " " || $0 == "+" }).map(String.init)
    }
}
