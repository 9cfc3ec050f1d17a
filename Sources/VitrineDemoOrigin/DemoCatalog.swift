import Synchronization

#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif

/// A product of the demo catalog.
public struct DemoProduct: Sendable, Equatable {
    public let id: Int
    public let name: String
    public let description: String
    public var priceCents: Int
    public var stock: Int
    public let categoryID: Int
    public let brand: String
    public let rating: Double
    public let color: String
    public let material: String
    /// Lower-cased name and description as UTF-8, for search: matched byte-wise, because
    /// `String`'s substring search made one search take 300 ms over 10,000 products, holding the
    /// catalog's lock (every product and listing request of the demo origin waited on it).
    let searchText: [UInt8]

    public init(
        id: Int, name: String, description: String, priceCents: Int, stock: Int, categoryID: Int, brand: String, rating: Double,
        color: String, material: String
    ) {
        self.id = id
        self.name = name
        self.description = description
        self.priceCents = priceCents
        self.stock = stock
        self.categoryID = categoryID
        self.brand = brand
        self.rating = rating
        self.color = color
        self.material = material
        self.searchText = Array((name + " " + description).lowercased().utf8)
    }
}

/// A category of the demo catalog.
public struct DemoCategory: Sendable, Equatable {
    public let id: Int
    public let name: String

    public init(id: Int, name: String) {
        self.id = id
        self.name = name
    }
}

/// The demo origin's data in memory: products generated from a fixed seed, changed by writes.
/// Also the seed of the Postgres-backed catalog.
public final class DemoCatalog: CatalogStore {
    public let categories: [DemoCategory]
    private let products: Mutex<[DemoProduct]>
    /// Product ids of each category, by category id.
    private let productsByCategory: [Int: [Int]]

    public init(productCount: Int = 10_000, seed: UInt64 = 42) {
        var random = SeededGenerator(seed: seed)
        let categoryNames = [
            "Running Shoes", "Hiking Boots", "Rain Jackets", "Backpacks", "Tents", "Sleeping Bags", "Camp Kitchen",
            "Headlamps", "Trail Socks", "Base Layers", "Fleece", "Climbing Gear", "Bikes", "Bike Helmets", "Kayaks",
            "Water Bottles", "Sunglasses", "Watches", "Yoga Mats", "Swimwear", "Ski Gear", "Snowboards", "Gloves",
            "Hats",
        ]
        categories = categoryNames.enumerated().map { DemoCategory(id: $0.offset + 1, name: $0.element) }
        var generated: [DemoProduct] = []
        generated.reserveCapacity(productCount)
        var byCategory: [Int: [Int]] = [:]
        for id in 1...max(productCount, 1) {
            let category = categories[Int(random.next() % UInt64(categories.count))]
            let adjective = Words.adjectives.randomElement(using: &random)!
            let material = Words.materials.randomElement(using: &random)!
            let noun = Words.nouns.randomElement(using: &random)!
            let brand = Words.brands.randomElement(using: &random)!
            let color = Words.colors.randomElement(using: &random)!
            let name = "\(brand) \(adjective) \(material) \(noun)"
            var sentences: [String] = []
            let sentenceCount = 6 + Int(random.next() % 14)
            for _ in 0..<sentenceCount {
                let words = (0..<(8 + Int(random.next() % 10))).map { _ in Words.prose.randomElement(using: &random)! }
                sentences.append(words.joined(separator: " ").capitalizedFirst + ".")
            }
            let description = "The \(name) in \(color): " + sentences.joined(separator: " ")
            let product = DemoProduct(
                id: id,
                name: name,
                description: description,
                priceCents: 199 + Int(random.next() % 49_800),
                stock: Int(random.next() % 500),
                categoryID: category.id,
                brand: brand,
                rating: Double(20 + Int(random.next() % 31)) / 10,
                color: color,
                material: material
            )
            generated.append(product)
            byCategory[category.id, default: []].append(id)
        }
        products = Mutex(generated)
        productsByCategory = byCategory
    }

    public var productCount: Int { products.withLock { $0.count } }

    public func product(_ id: Int) -> DemoProduct? {
        products.withLock { $0.indices.contains(id - 1) ? $0[id - 1] : nil }
    }

    public func category(_ id: Int) -> DemoCategory? {
        categories.indices.contains(id - 1) ? categories[id - 1] : nil
    }

    public func productCount(inCategory id: Int) -> Int { productsByCategory[id]?.count ?? 0 }

    /// Every product, by id.
    public var allProducts: [DemoProduct] { products.withLock { $0 } }

    public func categorySummaries() -> [CategorySummary] {
        categories.map { CategorySummary(category: $0, productCount: productCount(inCategory: $0.id)) }
    }

    public func updateProduct(_ id: Int, priceCents: Int?, stock: Int?) -> DemoProduct? {
        products.withLock { products in
            guard products.indices.contains(id - 1) else { return nil }
            if let priceCents { products[id - 1].priceCents = priceCents }
            if let stock { products[id - 1].stock = stock }
            return products[id - 1]
        }
    }

    public func listing(category: Int, sort: CatalogSort, page: Int, perPage: Int) -> CatalogPage? {
        guard self.category(category) != nil else { return nil }
        let ids = productsByCategory[category] ?? []
        let items = products.withLock { products in ids.map { products[$0 - 1] } }
        let sorted: [DemoProduct]
        switch sort {
        case .priceAscending: sorted = items.sorted { ($0.priceCents, $0.id) < ($1.priceCents, $1.id) }
        case .priceDescending: sorted = items.sorted { ($0.priceCents, $1.id) > ($1.priceCents, $0.id) }
        case .name: sorted = items.sorted { ($0.name, $0.id) < ($1.name, $1.id) }
        }
        return CatalogPage(items: Array(sorted.dropFirst((page - 1) * perPage).prefix(perPage)), total: sorted.count)
    }

    public func search(_ query: String, page: Int, perPage: Int) -> CatalogPage {
        let terms = SearchTerms.split(query).map { Array($0.utf8) }
        let matches = products.withLock { products in
            products.filter { product in terms.allSatisfy { product.searchText.containsBytes($0) } }
        }
        return CatalogPage(items: Array(matches.dropFirst((page - 1) * perPage).prefix(perPage)), total: matches.count)
    }
}

extension String {
    var capitalizedFirst: String {
        guard let first else { return self }
        return first.uppercased() + dropFirst()
    }
}

enum Words {
    static let adjectives = [
        "Ultralight", "Rugged", "Classic", "Alpine", "Trail", "Urban", "Summit", "Coastal", "Storm", "Everyday",
        "Pro", "Compact", "Thermal", "Breathable", "Waterproof", "Packable",
    ]
    static let materials = ["Merino", "Nylon", "Gore-Tex", "Canvas", "Leather", "Titanium", "Bamboo", "Down", "Mesh", "Carbon"]
    static let nouns = [
        "Runner", "Boot", "Jacket", "Pack", "Shell", "Hoodie", "Tent", "Bag", "Lamp", "Sock", "Vest", "Glove",
        "Bottle", "Helmet", "Board", "Mat",
    ]
    static let brands = ["Northwind", "Peakline", "Ridgeway", "Bluefjord", "Kestrel", "Obsidian", "Larchwood", "Tundra"]
    static let colors = ["black", "slate", "forest green", "ember red", "glacier blue", "sand", "ochre", "charcoal"]
    static let prose = [
        "built", "for", "long", "days", "on", "rough", "ground", "with", "a", "lightweight", "frame", "that",
        "breathes", "and", "dries", "fast", "recycled", "fabric", "keeps", "weather", "out", "while", "seams",
        "stay", "sealed", "tested", "in", "the", "field", "by", "guides", "comfortable", "fit", "reinforced",
        "heel", "grippy", "sole", "storage", "pockets", "adjustable", "straps", "warm", "layer", "cold",
        "mornings", "packs", "down", "small", "durable", "finish", "everyday", "adventures", "city", "trail",
    ]
}

extension Array where Element == UInt8 {
    /// Whether `needle` occurs in these bytes: `memchr` to each candidate first byte, `memcmp` for
    /// the rest.
    func containsBytes(_ needle: [UInt8]) -> Bool {
        guard let first = needle.first else { return true }
        return withUnsafeBytes { haystack in
            needle.withUnsafeBytes { needle in
                guard let base = haystack.baseAddress, haystack.count >= needle.count else { return false }
                let last = haystack.count - needle.count  // the last offset a match can start at
                var offset = 0
                while offset <= last {
                    guard let found = memchr(base + offset, Int32(first), last - offset + 1) else { return false }
                    let start = base.distance(to: UnsafeRawPointer(found))
                    if memcmp(base + start, needle.baseAddress!, needle.count) == 0 { return true }
                    offset = start + 1
                }
                return false
            }
        }
    }
}
