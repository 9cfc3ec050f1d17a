import CoreMetrics
import Metrics
import Prometheus

/// The proxy's Prometheus metrics, created through swift-metrics on a registry of its own (so
/// that several proxies can live in one process, as they do in tests).
final class ProxyMetrics: Sendable {
    let registry: PrometheusCollectorRegistry
    let hits: CoreMetrics.Counter
    let misses: CoreMetrics.Counter
    let passes: CoreMetrics.Counter
    let stale: CoreMetrics.Counter
    let errors: CoreMetrics.Counter
    let purges: CoreMetrics.Counter
    let originLatency: CoreMetrics.Timer
    let entries: CoreMetrics.Gauge
    let bytes: CoreMetrics.Gauge

    init() {
        let registry = PrometheusCollectorRegistry()
        var factory = PrometheusMetricsFactory(registry: registry)
        factory.defaultDurationHistogramBuckets = [
            .microseconds(500), .milliseconds(1), .milliseconds(2), .milliseconds(5), .milliseconds(10),
            .milliseconds(25), .milliseconds(50), .milliseconds(100), .milliseconds(250), .milliseconds(500),
            .seconds(1), .seconds(2), .seconds(5), .seconds(10),
        ]
        self.registry = registry
        func requests(_ result: String) -> CoreMetrics.Counter {
            CoreMetrics.Counter(label: "vitrine_requests_total", dimensions: [("result", result)], factory: factory)
        }
        hits = requests("hit")
        misses = requests("miss")
        passes = requests("pass")
        stale = requests("stale")
        errors = requests("error")
        purges = CoreMetrics.Counter(label: "vitrine_purges_total", factory: factory)
        originLatency = CoreMetrics.Timer(label: "vitrine_origin_response_seconds", factory: factory)
        entries = CoreMetrics.Gauge(label: "vitrine_cache_entries", factory: factory)
        bytes = CoreMetrics.Gauge(label: "vitrine_cache_bytes", factory: factory)
    }

    /// The Prometheus text exposition.
    func exposition() -> [UInt8] {
        registry.emitToBuffer()
    }
}
