import NIOCore

/// What to request next: one fixed target, the storefront mix (Zipf-distributed product pages,
/// listing pages, searches and a share of writes), or product pages drawn uniformly. Requests are
/// encoded once, up front.
struct RequestMix {
    /// Raw values number the kinds in order, for counting without hashing.
    enum Kind: Int, CaseIterable {
        case product, listing, search, write, fixed

        /// As reports name it: the case's name.
        var name: String { "\(self)" }
    }

    struct Request {
        let kind: Kind
        let bytes: ByteBuffer
    }

    private var products: [ByteBuffer] = []
    private var listings: [ByteBuffer] = []
    private var searches: [ByteBuffer] = []
    private var fixed: ByteBuffer?
    private var productZipf: ZipfSampler?
    private var uniformProducts = false
    private let host: String
    private let writeShare: Double
    private var random = SplitMix64(seed: 0x5EED)

    init(options: Options) {
        host = "\(options.host):\(options.port)"
        writeShare = options.writeShare
        guard let mix = options.mix else {
            fixed = Self.get(options.path, host: host)
            return
        }
        products = (1...options.products).map { Self.get("/catalog/products/\($0)", host: host) }
        guard mix == "storefront" else {
            uniformProducts = true
            return
        }
        productZipf = ZipfSampler(count: options.products, exponent: 1.1)
        for category in 1...options.categories {
            for sort in ["price_asc", "price_desc", "name"] {
                for page in 1...3 { listings.append(Self.get("/catalog/categories/\(category)/products?sort=\(sort)&page=\(page)", host: host)) }
            }
        }
        let terms = ["merino", "jacket", "merino+jacket", "trail+runner", "waterproof", "tent", "headlamp", "titanium+bottle", "down", "boot"]
        searches = terms.map { Self.get("/search/products?q=\($0)", host: host) }
    }

    /// The next request: 60% product pages, 25% listings, 15% searches, less the writes' share.
    mutating func next() -> Request {
        if let fixed { return Request(kind: .fixed, bytes: fixed) }
        if uniformProducts { return Request(kind: .product, bytes: products[Int(random.next() % UInt64(products.count))]) }
        let roll = random.nextUnit()
        if roll < writeShare {
            let id = productZipf!.sample(&random)
            let body = "{\"stock\": \(Int(random.next() % 500))}"
            return Request(
                kind: .write,
                bytes: ByteBuffer(
                    string: "PATCH /catalog/products/\(id) HTTP/1.1\r\nHost: \(host)\r\nContent-Type: application/json\r\n"
                        + "Content-Length: \(body.utf8.count)\r\n\r\n\(body)"))
        }
        let share = (roll - writeShare) / (1 - writeShare)
        if share < 0.60 { return Request(kind: .product, bytes: products[productZipf!.sample(&random) - 1]) }
        if share < 0.85 { return Request(kind: .listing, bytes: listings[Int(random.next() % UInt64(listings.count))]) }
        return Request(kind: .search, bytes: searches[Int(random.next() % UInt64(searches.count))])
    }

    static func get(_ path: String, host: String) -> ByteBuffer {
        ByteBuffer(string: "GET \(path) HTTP/1.1\r\nHost: \(host)\r\n\r\n")
    }
}

/// Ranks 1...count drawn with probability ∝ 1 / rank^exponent (a few products take most reads).
struct ZipfSampler {
    private let cumulative: [Double]

    init(count: Int, exponent: Double) {
        var total = 0.0
        var cumulative: [Double] = []
        cumulative.reserveCapacity(count)
        for rank in 1...count {
            total += 1 / pow(Double(rank), exponent)
            cumulative.append(total)
        }
        self.cumulative = cumulative.map { $0 / total }
    }

    func sample(_ random: inout SplitMix64) -> Int {
        let target = random.nextUnit()
        var low = 0
        var high = cumulative.count - 1
        while low < high {
            let middle = (low + high) / 2
            if cumulative[middle] < target { low = middle + 1 } else { high = middle }
        }
        return low + 1
    }
}

struct SplitMix64 {
    private var state: UInt64
    init(seed: UInt64) { state = seed }

    mutating func next() -> UInt64 {
        state &+= 0x9E37_79B9_7F4A_7C15
        var z = state
        z = (z ^ (z >> 30)) &* 0xBF58_476D_1CE4_E5B9
        z = (z ^ (z >> 27)) &* 0x94D0_49BB_1331_11EB
        return z ^ (z >> 31)
    }

    /// Uniform in [0, 1).
    mutating func nextUnit() -> Double { Double(next() >> 11) / Double(1 << 53) }
}

import Foundation
