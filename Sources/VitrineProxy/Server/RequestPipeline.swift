import NIOCore
import NIOHTTP1
import VitrineCore

/// The request path, in the order Varnish reads: receive → lookup → hit / miss / pass → fetch →
/// deliver. Everything a request goes through before bytes move to or from an origin is here.
extension ClientConnectionHandler {
    func serve(_ head: HTTPRequestHead) {
        proxy.stats.increment(.requests)

        // receive: limits and framing first; nothing else reads a head that fails them.
        if let error = RequestValidator.validate(head, limits: proxy.limits) {
            respond(error, keepAlive: false)
            return
        }
        let keepAlive = head.isKeepAlive
        guard let route = proxy.router.route(for: head.uri) else {
            respond(.noRoute, keepAlive: keepAlive)
            return
        }

        switch RequestClassifier.classify(head, route: route) {
        case .lookup:
            let key = CacheKey(head.uri)
            switch proxy.store.lookup(key) {
            case .fresh(let hit):
                deliverHit(hit, for: head, keepAlive: keepAlive)
            case .stale:
                // Stale serving (grace, stale-while-revalidate) decides here; for now a stale
                // entry is refetched like a miss, and replaced.
                fetch(head, route: route, mode: .miss(key: key, token: proxy.store.fetchToken(), wasStale: true), keepAlive: keepAlive)
            case .miss:
                fetch(head, route: route, mode: .miss(key: key, token: proxy.store.fetchToken(), wasStale: false), keepAlive: keepAlive)
            }
        case .pass(let fwd, let detail):
            fetch(head, route: route, mode: .pass(fwd: fwd, detail: detail), keepAlive: keepAlive)
        case .write:
            fetch(head, route: route, mode: .write, keepAlive: keepAlive)
        }
    }

    /// hit → deliver: the stored head, three dynamic lines and the stored body, written as they
    /// are. No body copy, no header encoding beyond the dynamic lines.
    private func deliverHit(_ hit: CacheHit<CachedResponse>, for head: HTTPRequestHead, keepAlive: Bool) {
        let response = hit.value
        let age = response.initialAge + Int(hit.residentNanoseconds / 1_000_000_000)
        // Age rounds down and ttl up, so that Age + ttl is the freshness lifetime.
        let ttl = max(0, Int((hit.remainingNanoseconds + 999_999_999) / 1_000_000_000))
        let notModified =
            head.headers.first(name: "if-none-match").map { response.matches(ifNoneMatch: $0) } ?? false

        var tail = context.channel.allocator.buffer(capacity: 112)
        tail.writeHeader("Age", decimal: age)
        tail.writeStaticString("Cache-Status: vitrine; hit; ttl=")
        tail.writeDecimal(ttl)
        tail.writeStaticString("\r\nX-Cache: HIT\r\n")
        if !keepAlive {
            tail.writeStaticString("Connection: close\r\n")
        } else if head.version.minor == 0 {
            tail.writeStaticString("Connection: keep-alive\r\n")
        }
        tail.writeStaticString("\r\n")

        if notModified {
            write(response.notModifiedHead)
            write(tail)
            proxy.stats.increment(.notModified)
        } else {
            write(response.head)
            write(tail)
            if head.method != .HEAD { write(response.body) }
        }
        proxy.stats.increment(.hits)
        proxy.metrics.hits.increment()
        if proxy.accessLog { logAccess(head, status: notModified ? 304 : Int(response.status.code), result: "HIT") }
        if !keepAlive { closeAfterWrites() }
    }

    /// miss / pass → fetch: hands the request to an exchange with the route's origin.
    private func fetch(_ head: HTTPRequestHead, route: Route, mode: ForwardExchange.Mode, keepAlive: Bool) {
        let pool = proxy.origins.pool(route.originIndex, on: context.eventLoop)
        let exchange = ForwardExchange(
            connection: self, request: head, route: route, mode: mode, pool: pool, keepAlive: keepAlive)
        self.exchange = exchange
        exchange.start()
    }

    func logAccess(_ head: HTTPRequestHead, status: Int, result: String) {
        proxy.logger.info(
            "access",
            metadata: [
                "client": .string(clientAddress), "method": .string(head.method.rawValue), "target": .string(head.uri),
                "status": .stringConvertible(status), "cache": .string(result),
            ])
    }
}
