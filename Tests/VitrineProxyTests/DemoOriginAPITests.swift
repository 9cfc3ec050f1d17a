import Foundation
import Testing
import VitrineDemoOrigin

@Suite struct DemoOriginAPITests {
    static let api = DemoOriginAPI(catalog: DemoCatalog(productCount: 2_000))

    func get(_ uri: String, headers: [(String, String)] = []) async -> DemoResponse {
        await Self.api.handle(method: "GET", uri: uri, headers: headers, body: [])
    }

    func header(_ response: DemoResponse, _ name: String) -> String? {
        response.headers.first { $0.0.lowercased() == name.lowercased() }?.1
    }

    @Test func theCatalogIsTheSameEveryTime() async throws {
        let other = DemoCatalog(productCount: 2_000)
        #expect(other.product(1234) == (try await Self.api.catalog.product(1234)))
    }

    @Test func productsAreTaggedCacheableAndSized() async throws {
        let response = await get("/catalog/products/42")
        #expect(response.status == 200)
        #expect((1_000...50_000).contains(response.body.count))
        #expect(header(response, "Cache-Control") == "public, max-age=300")
        #expect(header(response, "ETag") != nil)
        let product = try JSONSerialization.jsonObject(with: Data(response.body)) as! [String: Any]
        #expect(header(response, "Surrogate-Key") == "product:42 category:\(product["category_id"] as! Int)")
        for field in ["id", "name", "description", "price_cents", "stock", "category_id"] { #expect(product[field] != nil) }
        #expect(await get("/catalog/products/999999").status == 404)
    }

    @Test func listingsSortPageAndTagTheirProducts() async throws {
        let response = await get("/catalog/categories/3/products?sort=price_desc&page=2&per_page=24")
        #expect(response.status == 200)
        #expect(response.body.count <= 50_000)
        let page = try JSONSerialization.jsonObject(with: Data(response.body)) as! [String: Any]
        let items = page["items"] as! [[String: Any]]
        #expect(items.count == 24)
        let prices = items.map { $0["price_cents"] as! Int }
        #expect(prices == prices.sorted(by: >))
        let tags = header(response, "Surrogate-Key")!.split(separator: " ")
        #expect(tags.contains("listing:category:3"))
        #expect(tags.contains("product:\(items[0]["id"] as! Int)"))
        #expect(await get("/catalog/categories/3/products?sort=random").status == 400)
        #expect(await get("/catalog/categories/999/products").status == 404)
    }

    @Test func searchMatchesEveryWord() async throws {
        let response = await get("/search/products?q=merino+jacket&page=1")
        #expect(response.status == 200)
        let page = try JSONSerialization.jsonObject(with: Data(response.body)) as! [String: Any]
        let items = page["items"] as! [[String: Any]]
        #expect(!items.isEmpty)
        for item in items {
            let text = ((item["name"] as! String) + " " + (item["description"] as! String)).lowercased()
            #expect(text.contains("merino") && text.contains("jacket"))
        }
        #expect(header(response, "Surrogate-Key")!.hasPrefix("search"))
    }

    @Test func writesChangeTheProductAndNameWhatTheyTouched() async throws {
        let api = DemoOriginAPI(catalog: DemoCatalog(productCount: 100))
        let response = await api.handle(method: "PATCH", uri: "/catalog/products/7", headers: [], body: Array(#"{"price_cents": 4242, "stock": 0}"#.utf8))
        #expect(response.status == 200)
        #expect(try await api.catalog.product(7)?.priceCents == 4242)
        #expect(try await api.catalog.product(7)?.stock == 0)
        #expect(header(response, "Surrogate-Key")?.contains("listing:category:") == true)
        #expect(await api.handle(method: "PATCH", uri: "/catalog/products/7", headers: [], body: Array("nope".utf8)).status == 400)
        #expect(await api.handle(method: "PATCH", uri: "/catalog/products/7", headers: [], body: Array(#"{"price_cents": -1}"#.utf8)).status == 400)
        #expect(await api.handle(method: "PATCH", uri: "/catalog/products/7", headers: [], body: Array(#"{"colour": 1}"#.utf8)).status == 400)
        #expect(await api.handle(method: "PATCH", uri: "/catalog/products/700", headers: [], body: Array(#"{"stock": 1}"#.utf8)).status == 404)
    }

    @Test func conditionalGetIs304() async {
        let first = await get("/catalog/products/5")
        let etag = header(first, "ETag")!
        #expect(await get("/catalog/products/5", headers: [("If-None-Match", etag)]).status == 304)
    }
}
