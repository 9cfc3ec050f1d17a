import Foundation
import Synchronization

/// An answer of the demo origin.
public struct DemoResponse: Sendable {
    public var status: Int
    public var headers: [(String, String)]
    public var body: [UInt8]
}

/// The demo origin's HTTP API (see CONTRACT.md, "Demo origin API"): request → response over a
/// `CatalogStore`, so it is tested without sockets. A store that fails (Postgres down) answers
/// 503, never stored by a cache.
public final class DemoOriginAPI: Sendable {
    public let catalog: any CatalogStore
    private let requestCount = Atomic<Int>(0)
    public static let perPageDefault = 24
    public static let searchPerPage = 20

    public init(catalog: any CatalogStore) {
        self.catalog = catalog
    }

    /// Requests answered since start.
    public var requests: Int { requestCount.load(ordering: .relaxed) }

    public func handle(method: String, uri: String, headers: [(String, String)], body: [UInt8]) async -> DemoResponse {
        do {
            return try await route(method: method, uri: uri, headers: headers, body: body)
        } catch {
            return self.error(503, "catalog_unavailable", "the catalog store failed: \(error)")
        }
    }

    private func route(method: String, uri: String, headers: [(String, String)], body: [UInt8]) async throws -> DemoResponse {
        let (path, query) = Self.split(uri)
        let segments = path.split(separator: "/").map(String.init)
        if segments == ["_origin", "stats"] {
            return json(200, "{\"requests\":\(requests)}", cacheControl: "no-store", tags: [])
        }
        requestCount.add(1, ordering: .relaxed)
        let response: DemoResponse
        switch (method, segments.count) {
        case ("GET", 3) where segments[0] == "catalog" && segments[1] == "products":
            response = try await product(segments[2])
        case ("PATCH", 3) where segments[0] == "catalog" && segments[1] == "products":
            response = try await updateProduct(segments[2], body: body)
        case ("GET", 2) where segments == ["catalog", "categories"]:
            response = try await categories()
        case ("GET", 4) where segments[0] == "catalog" && segments[1] == "categories" && segments[3] == "products":
            response = try await listing(segments[2], query: query)
        case ("GET", 2) where segments == ["search", "products"]:
            response = try await search(query: query)
        case (_, _) where ["POST", "PUT", "DELETE", "PATCH"].contains(method):
            response = error(405, "method_not_allowed", "\(method) is not supported here")
        default:
            response = error(404, "not_found", "no such resource")
        }
        return conditional(response, ifNoneMatch: headers.first { $0.0.lowercased() == "if-none-match" }?.1)
    }

    // MARK: Resources

    private func product(_ idText: String) async throws -> DemoResponse {
        guard let id = Int(idText), let product = try await catalog.product(id) else {
            return error(404, "not_found", "no product \(idText)")
        }
        return json(
            200, Self.productJSON(product), cacheControl: "public, max-age=300",
            tags: ["product:\(product.id)", "category:\(product.categoryID)"])
    }

    private func updateProduct(_ idText: String, body: [UInt8]) async throws -> DemoResponse {
        guard let id = Int(idText) else { return error(404, "not_found", "no product \(idText)") }
        guard let object = (try? JSONSerialization.jsonObject(with: Data(body))) as? [String: Any] else {
            return error(400, "invalid_json", "expected a JSON object with price_cents and/or stock")
        }
        let unknown = Set(object.keys).subtracting(["price_cents", "stock"])
        guard unknown.isEmpty else { return error(400, "unknown_field", "unknown field \(unknown.sorted()[0])") }
        struct Update: Decodable {
            var price_cents: Int?
            var stock: Int?
        }
        guard let update = try? JSONDecoder().decode(Update.self, from: Data(body)),
            (update.price_cents ?? 0) >= 0, (update.stock ?? 0) >= 0
        else {
            return error(400, "invalid_value", "price_cents and stock must be non-negative integers")
        }
        let price = update.price_cents
        let stock = update.stock
        guard price != nil || stock != nil else { return error(400, "empty_update", "give price_cents and/or stock") }
        guard let updated = try await catalog.updateProduct(id, priceCents: price, stock: stock) else {
            return error(404, "not_found", "no product \(idText)")
        }
        return json(
            200, Self.productJSON(updated), cacheControl: "no-store",
            // What the change touched, as the catalog triggers name it: the product and its
            // category's listings (not every product of the category).
            tags: ["product:\(id)", "listing:category:\(updated.categoryID)"])
    }

    private func categories() async throws -> DemoResponse {
        var writer = JSONWriter()
        writer.beginArray()
        for summary in try await catalog.categorySummaries() {
            writer.beginObject()
            writer.field("id", summary.category.id)
            writer.field("name", summary.category.name)
            writer.field("product_count", summary.productCount)
            writer.endObject()
        }
        writer.endArray()
        return json(200, writer.text, cacheControl: "public, max-age=600", tags: ["categories"])
    }

    private func listing(_ idText: String, query: [String: String]) async throws -> DemoResponse {
        guard let id = Int(idText) else { return error(404, "not_found", "no category \(idText)") }
        guard let sort = CatalogSort(rawValue: query["sort"] ?? "price_asc") else {
            return error(400, "invalid_sort", "sort must be price_asc, price_desc or name")
        }
        guard let page = Int(query["page"] ?? "1"), page >= 1 else { return error(400, "invalid_page", "page must be 1 or more") }
        guard let perPage = Int(query["per_page"] ?? "\(Self.perPageDefault)"), (1...100).contains(perPage) else {
            return error(400, "invalid_per_page", "per_page must be 1...100")
        }
        guard let result = try await catalog.listing(category: id, sort: sort, page: page, perPage: perPage) else {
            return error(404, "not_found", "no category \(idText)")
        }
        let (items, total) = (result.items, result.total)
        let text = Self.pageJSON(items) { writer in
            writer.field("page", page)
            writer.field("per_page", perPage)
            writer.field("total", total)
            writer.field("sort", sort.rawValue)
        }
        return json(
            200, text, cacheControl: "public, max-age=120",
            tags: ["category:\(id)", "listing:category:\(id)"] + items.map { "product:\($0.id)" })
    }

    private func search(query: [String: String]) async throws -> DemoResponse {
        let text = query["q"] ?? ""
        guard let page = Int(query["page"] ?? "1"), page >= 1 else { return error(400, "invalid_page", "page must be 1 or more") }
        let result = try await catalog.search(text, page: page, perPage: Self.searchPerPage)
        let (items, total) = (result.items, result.total)
        let body = Self.pageJSON(items) { writer in
            writer.field("page", page)
            writer.field("total", total)
            writer.field("q", text)
        }
        return json(200, body, cacheControl: "public, max-age=60", tags: ["search"] + items.map { "product:\($0.id)" })
    }

    // MARK: Encoding

    /// `{"items": [...products], <fields>}`, as listings and search answer.
    static func pageJSON(_ items: [DemoProduct], fields: (inout JSONWriter) -> Void) -> String {
        var writer = JSONWriter(capacity: 1_600 * items.count + 128)
        writer.beginObject()
        writer.beginArray("items")
        for item in items { writer.raw(productJSON(item)) }
        writer.endArray()
        fields(&writer)
        writer.endObject()
        return writer.text
    }

    static func productJSON(_ product: DemoProduct) -> String {
        var writer = JSONWriter(capacity: 1600)
        writer.beginObject()
        writer.field("id", product.id)
        writer.field("name", product.name)
        writer.field("description", product.description)
        writer.field("price_cents", product.priceCents)
        writer.field("currency", "USD")
        writer.field("stock", product.stock)
        writer.field("in_stock", product.stock > 0)
        writer.field("category_id", product.categoryID)
        writer.field("brand", product.brand)
        writer.field("rating", product.rating)
        writer.beginObject("attributes")
        writer.field("color", product.color)
        writer.field("material", product.material)
        writer.endObject()
        writer.beginArray("images")
        for index in 1...3 { writer.value("https://img.vitrine.example/products/\(product.id)/\(index).jpg") }
        writer.endArray()
        writer.endObject()
        return writer.text
    }

    private func json(_ status: Int, _ text: String, cacheControl: String, tags: [String]) -> DemoResponse {
        let body = Array(text.utf8)
        var headers: [(String, String)] = [
            ("Content-Type", "application/json"),
            ("Cache-Control", cacheControl),
            ("ETag", "\"\(String(Self.fnv1a(body), radix: 16))\""),
        ]
        if !tags.isEmpty { headers.append(("Surrogate-Key", tags.joined(separator: " "))) }
        return DemoResponse(status: status, headers: headers, body: body)
    }

    private func error(_ status: Int, _ code: String, _ message: String) -> DemoResponse {
        var writer = JSONWriter()
        writer.beginObject()
        writer.field("error", code)
        writer.field("message", message)
        writer.endObject()
        return json(status, writer.text, cacheControl: status == 404 ? "public, max-age=10" : "no-store", tags: [])
    }

    private func conditional(_ response: DemoResponse, ifNoneMatch: String?) -> DemoResponse {
        guard response.status == 200, let ifNoneMatch,
            let etag = response.headers.first(where: { $0.0 == "ETag" })?.1,
            ifNoneMatch.split(separator: ",").contains(where: { $0.trimmingCharacters(in: .whitespaces) == etag })
        else { return response }
        return DemoResponse(status: 304, headers: response.headers.filter { $0.0 != "Content-Type" }, body: [])
    }

    static func split(_ uri: String) -> (path: String, query: [String: String]) {
        let parts = uri.split(separator: "?", maxSplits: 1, omittingEmptySubsequences: false)
        var query: [String: String] = [:]
        if parts.count == 2 {
            for pair in parts[1].split(separator: "&") {
                let keyValue = pair.split(separator: "=", maxSplits: 1, omittingEmptySubsequences: false)
                let key = String(keyValue[0]).removingPercentEncoding ?? String(keyValue[0])
                let raw = keyValue.count == 2 ? String(keyValue[1]).replacingOccurrences(of: "+", with: " ") : ""
                query[key] = raw.removingPercentEncoding ?? raw
            }
        }
        return (String(parts[0]), query)
    }

    static func fnv1a(_ bytes: [UInt8]) -> UInt64 {
        var hash: UInt64 = 0xcbf2_9ce4_8422_2325
        for byte in bytes {
            hash ^= UInt64(byte)
            hash &*= 0x0000_0100_0000_01b3
        }
        return hash
    }
}
