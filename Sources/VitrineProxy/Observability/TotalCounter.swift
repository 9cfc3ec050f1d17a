import Prometheus
import Synchronization

/// A Prometheus counter fed from a running total that a status value keeps (the feed's applied
/// rows, the outbox's deliveries, the listings' refreshes): each scrape advances it by what the
/// total grew since the previous one, never backwards.
final class TotalCounter: Sendable {
    private let counter: Counter
    private let reported = Mutex(0)

    init(name: String, labels: [(String, String)] = [], help: String, registry: PrometheusCollectorRegistry) {
        counter = registry.counter(name: name, labels: labels, help: help)
    }

    func record(total: Int) {
        let previous = reported.withLock { reported in
            defer { reported = total }
            return reported
        }
        counter.increment(by: Int64(max(0, total - previous)))
    }
}
