import VitrineCore

/// `Cache-Control`, `CDN-Cache-Control`, `Surrogate-Control`, `Age`, `Date`, `Expires`, `Vary`
/// and the storage decision they make: never a lifetime past 2^31 seconds, never negative; an
/// error never kept to be served stale; nothing stored for a request with `no-store`.
enum CacheControlTarget {
    static let policy = ResponseCachePolicy(defaultTTL: .seconds(60), grace: .seconds(30), negativeTTL: .seconds(10), keep: .seconds(600))

    static func run(_ bytes: [UInt8]) {
        guard let first = bytes.first else { return }
        let headers = fuzzHeaderLines(Array(bytes.dropFirst()))
        let status = [200, 203, 204, 206, 301, 304, 404, 410, 500, 501, 503, 599][Int(first) % 12]
        let timing = ResponseTiming(responseTime: 1_767_225_600 + Int(first), responseDelay: Int(first % 4))
        let decision = policy.decide(status: status, headers: headers, requestNoStore: first & 0x80 != 0, timing: timing)
        if let plan = decision.plan {
            let limit = Duration.seconds(DeltaSeconds.maximum)
            precondition(plan.ttl >= .zero && plan.ttl <= limit, "ttl \(plan.ttl)")
            precondition(plan.staleWhileRevalidate <= limit && plan.staleIfError <= limit, "stale windows")
            precondition(plan.initialAge >= 0, "negative age")
            precondition(status < 500 || plan.retention == .zero, "an error kept to be served stale")
            precondition(first & 0x80 == 0, "stored despite the request's no-store")
        }
        let values = headers.map(\.value)
        _ = CacheControl(parsing: values)
        _ = RequestCacheDirectives(cacheControl: values, pragma: values)
    }
}
