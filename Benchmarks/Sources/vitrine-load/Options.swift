import Foundation

/// `vitrine-load --url URL [--rate R | --connections C] --duration D [--mix storefront|products] [--json]`.
struct Options {
    var host = "127.0.0.1"
    var port = 8080
    /// The path requested when there is no mix.
    var path = "/"
    /// Requests per second across all connections; nil: closed loop, as fast as answers come.
    var rate: Double?
    var connections = 64
    var duration: Double = 10
    var mix: String?
    var writeShare = 0.01
    var products = 10_000
    var categories = 24
    var json = false
    var progress = true

    static let usage = """
        usage: vitrine-load --url URL [--rate R] [--connections C] [--duration D] [--mix storefront]
                            [--write-share F] [--products N] [--categories N] [--json] [--quiet]
          --url URL          http://host:port/path: the target (with --mix, the host and port only)
          --rate R           open loop: R requests per second in all, latency measured from each
                             request's intended send time (coordinated omission corrected)
          --connections C    keep-alive connections (default 64); without --rate: closed loop
          --duration D       seconds, or 500ms / 30s / 2m (default 10s)
          --mix storefront   Zipf-distributed product pages, listing pages, searches and writes
          --mix products     product pages 1...N (--products) drawn uniformly: with an L1 smaller
                             than the catalog, most answers come from the shared tier (L2 hits)
          --write-share F    share of writes in the storefront mix (default 0.01)
          --json             one JSON object instead of the table
        """

    init(_ arguments: [String]) throws {
        var iterator = arguments.dropFirst().makeIterator()
        var url: String?
        while let argument = iterator.next() {
            func value() throws -> String {
                guard let value = iterator.next() else { throw OptionError("\(argument) needs a value") }
                return value
            }
            switch argument {
            case "--url": url = try value()
            case "--rate":
                guard let rate = Double(try value()), rate > 0 else { throw OptionError("--rate: a positive number") }
                self.rate = rate
            case "--connections", "-c":
                guard let count = Int(try value()), count > 0 else { throw OptionError("--connections: a positive integer") }
                connections = count
            case "--duration", "-d":
                guard let seconds = Self.seconds(try value()) else { throw OptionError("--duration: e.g. 10s, 500ms, 2m") }
                duration = seconds
            case "--mix":
                mix = try value()
                guard mix == "storefront" || mix == "products" else { throw OptionError("--mix: storefront or products") }
            case "--write-share":
                guard let share = Double(try value()), (0...1).contains(share) else { throw OptionError("--write-share: 0...1") }
                writeShare = share
            case "--products": products = Int(try value()) ?? products
            case "--categories": categories = Int(try value()) ?? categories
            case "--json": json = true
            case "--quiet": progress = false
            case "--help", "-h": throw OptionError(nil)
            default: throw OptionError("unknown option \(argument)")
            }
        }
        guard let url, let components = URLComponents(string: url), components.scheme == "http", let host = components.host else {
            throw OptionError("--url: an http://host:port/path URL is needed")
        }
        self.host = host == "localhost" ? "127.0.0.1" : host
        self.port = components.port ?? 80
        self.path = components.percentEncodedPath.isEmpty ? "/" : components.percentEncodedPath
        if let query = components.percentEncodedQuery { self.path += "?" + query }
    }

    static func seconds(_ text: String) -> Double? {
        if text.hasSuffix("ms") { return Double(text.dropLast(2)).map { $0 / 1_000 } }
        if text.hasSuffix("s") { return Double(text.dropLast()) }
        if text.hasSuffix("m") { return Double(text.dropLast()).map { $0 * 60 } }
        return Double(text)
    }
}

struct OptionError: Error {
    let message: String?
    init(_ message: String?) { self.message = message }
}
