import VitrineCore

/// Listings computed ahead of demand (`listings:` in the file): pages kept pinned in their own
/// byte budget, refreshed before they expire and right after a purge of their tags.
public struct ListingsSettings: Sendable, Equatable {
    public var pages: [ListingDefinition] = []
    /// Origin requests in flight for listings, at most.
    public var concurrency = 8
    /// Bytes of pinned listings; ordinary traffic never evicts them.
    public var budget = ByteSize(64 << 20)
    /// `/readyz` answers ready only once every listing has a version.
    public var requireWarm = true
    /// Purges landing within this of the first cost one recompute.
    public var debounce: Duration = .milliseconds(200)

    public init() {}
}

/// One family of listing pages: a URL template and where each of its parameters takes values.
public struct ListingDefinition: Sendable, Equatable {
    public var name: String
    public var template: ListingTemplate
    public var parameters: [ListingParameter]
    /// Tags (templates too) that also mark these pages for recompute, besides the ones the origin names.
    public var tags: [ListingTemplate] = []
    public var refresh: Duration = .seconds(60)
    /// How long after a purge the previous version may still be served while the next is computed.
    public var maxStale: Duration = .seconds(30)

    public init(name: String, template: ListingTemplate, parameters: [ListingParameter]) {
        self.name = name
        self.template = template
        self.parameters = parameters
    }
}

public struct ListingParameter: Sendable, Equatable {
    public enum Domain: Sendable, Equatable {
        case values([String])
        /// Integers from the first to the last, both included.
        case range(Int, Int)
        /// A JSON list from the origin (`path`): its items, or each item's `field`; read again every `refresh`.
        case index(path: String, field: String?, refresh: Duration)
    }

    public var name: String
    public var domain: Domain

    public init(name: String, domain: Domain) {
        self.name = name
        self.domain = domain
    }
}

extension ListingsSettings {
    /// What `vitrine demo` precomputes: every category's listing, 3 sorts × 3 pages.
    public static var demo: ListingsSettings {
        var settings = ListingsSettings()
        var pages = ListingDefinition(
            name: "category-pages",
            template: ListingTemplate("/catalog/categories/{category}/products?sort={sort}&page={page}")!,
            parameters: [
                ListingParameter(name: "category", domain: .index(path: "/catalog/categories", field: "id", refresh: .seconds(300))),
                ListingParameter(name: "sort", domain: .values(["price_asc", "price_desc", "name"])),
                ListingParameter(name: "page", domain: .range(1, 3)),
            ])
        pages.tags = [ListingTemplate("listing:category:{category}")!]
        pages.refresh = .seconds(60)
        pages.maxStale = .seconds(5)
        settings.pages = [pages]
        return settings
    }
}
