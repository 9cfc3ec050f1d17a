import Foundation

/// The run's result: a readable table, or one JSON object (`--json`).
struct Report {
    let run: LoadRun

    private func milliseconds(_ percentile: Double) -> Double {
        Double(run.histogram.valueAtPercentile(percentile)) / 1_000
    }

    private var errorCount: Int { run.failures.values.reduce(0, +) + run.statusErrors.values.reduce(0, +) }
    private var throughput: Double { run.elapsed > 0 ? Double(run.completed) / run.elapsed : 0 }
    private var hitRatio: Double? { run.withCacheHeader == 0 ? nil : Double(run.hits) / Double(run.withCacheHeader) }
    private var mode: String {
        run.options.rate.map { String(format: "open loop at %.0f req/s", $0) } ?? "closed loop"
    }

    var table: String {
        let options = run.options
        let target = options.mix.map { "\($0) mix" } ?? options.path
        var lines = [
            "vitrine-load: http://\(options.host):\(options.port)  \(target), \(mode), \(options.connections) connections, "
                + String(format: "%.1f s", run.elapsed),
            String(format: "  requests     %@  (%@ req/s)", Self.grouped(run.completed), Self.grouped(Int(throughput))),
            String(
                format: "  latency ms   p50 %.3f   p90 %.3f   p99 %.3f   p99.9 %.3f   max %.3f%@", milliseconds(50), milliseconds(90),
                milliseconds(99), milliseconds(99.9), Double(run.histogram.max) / 1_000,
                options.rate == nil ? "" : "   (from each request's intended send time)"),
            "  hit ratio    " + (hitRatio.map { String(format: "%.1f%% (X-Cache)", $0 * 100) } ?? "no X-Cache header"),
        ]
        if options.mix != nil {
            let kinds = RequestMix.Kind.allCases.compactMap { kind in run.kinds[kind].map { "\(kind.name) \(Self.grouped($0))" } }
            lines.append("  requests by  " + kinds.joined(separator: ", "))
        }
        if errorCount == 0 {
            lines.append("  errors       none")
        } else {
            let failures = LoadRun.Failure.allCases.compactMap { failure in run.failures[failure].map { "\(failure.rawValue) \($0)" } }
            let statuses = run.statusErrors.keys.sorted().map { "status \($0): \(run.statusErrors[$0]!)" }
            lines.append("  errors       " + (failures + statuses).joined(separator: ", "))
        }
        return lines.joined(separator: "\n")
    }

    var json: String {
        let options = run.options
        var object: [String: Any] = [
            "url": "http://\(options.host):\(options.port)\(options.mix == nil ? options.path : "")",
            "mix": options.mix ?? "none",
            "mode": options.rate == nil ? "closed" : "open",
            "connections": options.connections,
            "duration_s": run.elapsed,
            "requests": run.completed,
            "rps": throughput,
            "latency_ms": [
                "p50": milliseconds(50), "p90": milliseconds(90), "p99": milliseconds(99), "p99_9": milliseconds(99.9),
                "max": Double(run.histogram.max) / 1_000,
            ],
            "errors": [
                "total": errorCount,
                "by_kind": Dictionary(uniqueKeysWithValues: run.failures.map { ($0.key.rawValue, $0.value) }),
                "by_status": Dictionary(uniqueKeysWithValues: run.statusErrors.map { (String($0.key), $0.value) }),
            ],
            "requests_by_kind": Dictionary(uniqueKeysWithValues: run.kinds.map { ($0.key.name, $0.value) }),
        ]
        if let rate = options.rate { object["rate"] = rate }
        if let hitRatio { object["hit_ratio"] = hitRatio }
        let data = (try? JSONSerialization.data(withJSONObject: object, options: [.sortedKeys])) ?? Data()
        return String(decoding: data, as: UTF8.self)
    }

    static func grouped(_ value: Int) -> String {
        let digits = String(value)
        var result = ""
        for (offset, character) in digits.enumerated() {
            if offset > 0 && (digits.count - offset) % 3 == 0 { result.append(",") }
            result.append(character)
        }
        return result
    }
}
