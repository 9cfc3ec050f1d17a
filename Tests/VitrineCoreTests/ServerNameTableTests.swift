import Testing
import VitrineCore

@Suite struct ServerNameTableTests {
    let table = ServerNameTable([
        (names: ["shop.example", "www.shop.example"], value: "shop"),
        (names: ["*.api.example", "API.example"], value: "api"),
        (names: ["shop.example", "*.shop.example"], value: "wild"),
    ])!

    @Test func anExactNameWinsOverAWildcardAndTheFirstClaimWins() {
        #expect(table.value(for: "www.shop.example") == "shop")
        #expect(table.value(for: "shop.example") == "shop", "claimed by the first and the third: the first has it")
        #expect(table.value(for: "cdn.shop.example") == "wild")
    }

    @Test func aWildcardCoversOneLeftmostLabelOnly() {
        #expect(table.value(for: "eu.api.example") == "api")
        #expect(table.value(for: "a.eu.api.example") == "shop", "two labels: not covered, the default answers")
        #expect(table.value(for: ".api.example") == "shop", "an empty label is not a label")
        #expect(!table.claims("api.example.org"))
    }

    @Test func namesCompareWithoutCaseOrTrailingDot() {
        #expect(table.value(for: "SHOP.Example.") == "shop")
        #expect(table.value(for: "api.example") == "api")
        #expect(table.claims("Eu.Api.Example"))
    }

    @Test func noNameOrAnUnknownNameGetsTheFirstCertificate() {
        #expect(table.value(for: nil) == "shop")
        #expect(table.value(for: "unknown.example") == "shop")
        #expect(!table.claims("unknown.example"))
        #expect(ServerNameTable<String>([]) == nil, "a listener without a certificate cannot answer a hello")
    }
}
