import CoreMetrics
import Synchronization

/// A Prometheus counter fed from a running total that a status value keeps (the feed's applied
/// rows, the outbox's deliveries, the listings' refreshes): each scrape advances it by what the
/// total grew since the previous one, never backwards.
final class TotalCounter: Sendable {
    private let counter: CoreMetrics.Counter
    private let reported = Mutex(0)

    init(label: String, factory: any MetricsFactory) {
        counter = CoreMetrics.Counter(label: label, factory: factory)
    }

    func record(total: Int) {
        let previous = reported.withLock { reported in
            defer { reported = total }
            return reported
        }
        counter.increment(by: max(0, total - previous))
    }
}
