import Testing
import VitrineCore

@Suite struct CacheKeyNormalizerTests {
    @Test(arguments: [
        ("/p?b=2&a=1", "/p?a=1&b=2"),
        ("/p?utm_source=x&id=3&gclid=y&utm_medium=z", "/p?id=3"),
        ("/p?utm_source=x", "/p"),
        ("/p?b=2&a=1&b=1", "/p?a=1&b=2&b=1"),
        ("/p", "/p"),
        ("/p?", "/p"),
        ("/c/3/products?sort=price_asc&page=2", "/c/3/products?page=2&sort=price_asc"),
        ("/p?a=1&&b=2", "/p?a=1&&b=2"),
        ("/p?b=1&a&utm_=3&ab=2&", "/p?a&ab=2&b=1"),
        ("/p?q=caf%C3%A9&fbclid=1", "/p?q=caf%C3%A9"),
        ("/é?z=ü&y=1", "/é?y=1&z=ü"),
    ])
    func normalises(_ target: String, _ expected: String) {
        #expect(CacheKeyNormalizer().normalizedTarget(target) == expected)
    }

    @Test func identityAndHost() {
        #expect(CacheKeyNormalizer.identity.normalizedTarget("/p?b=2&a=1&utm_x=1") == "/p?b=2&a=1&utm_x=1")
        let withHost = CacheKeyNormalizer(includeHost: true)
        #expect(withHost.normalizedTarget("/p", host: "Shop.Example:80") == "shop.example/p")
        #expect(withHost.normalizedTarget("/p", host: "shop.example:8080") == "shop.example:8080/p")
    }

    @Test func cacheGroupsAreStructuredStrings() {
        #expect(CacheGroups.parse([#""product:1", "listing";p=1, token, "product:1""#, #""x""#]) == ["product:1", "listing", "x"])
        // Read as RFC 8941 says: escapes inside strings, and an invalid list names no group.
        #expect(CacheGroups.parse([#""a\"b", "c,d""#]) == [#"a"b"#, "c,d"])
        #expect(CacheGroups.parse([#""a" ;p=1"#]) == [])
        #expect(CacheGroups.parse(["nope"]) == [])
    }
}
