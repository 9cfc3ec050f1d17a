import NIOCore
import NIOHTTP1
import NIOPosix
import NIOSSL
import VitrineConfig

/// Keep-alive connections to one origin from one event loop. Confined to that loop: every call
/// happens on it, so it needs no locks.
final class OriginPool {
    let name: String
    let settings: OriginSettings
    let eventLoop: any EventLoop
    private let maxHeaderBytes: Int
    /// The TLS client for an `https://` origin (nil: cleartext, or one that could not be made:
    /// then every connection fails, and the node did not start with it).
    private let tls: OriginTLS?
    /// Idle connections, most recently used last (reused first: warm, least likely closed).
    private var idle: [OriginConnection] = []
    private var openCount = 0
    private var waiters = CircularBuffer<Waiter>()
    private var nextWaiterID = 0

    private struct Waiter {
        let id: Int
        let callback: (Result<OriginConnection, OriginFailure>) -> Void
        let timer: Scheduled<Void>
    }

    init(name: String, settings: OriginSettings, eventLoop: any EventLoop, maxHeaderBytes: Int, tls: OriginTLS? = nil) {
        self.name = name
        self.tls = tls
        self.settings = settings
        self.eventLoop = eventLoop
        self.maxHeaderBytes = maxHeaderBytes
    }

    /// Hands a connection to `callback`: an idle one, a new one, or the next one released
    /// within the connect timeout.
    func acquire(_ callback: @escaping (Result<OriginConnection, OriginFailure>) -> Void) {
        eventLoop.preconditionInEventLoop()
        while let connection = idle.popLast() {
            if connection.isUsable {
                callback(.success(connection))
                return
            }
        }
        if openCount < settings.maxConnections {
            connect(callback)
            return
        }
        let id = nextWaiterID
        nextWaiterID += 1
        let timer = eventLoop.assumeIsolated().scheduleTask(in: .nanoseconds(Int64(settings.connectTimeout.nanosecondsClamped))) {
            [self] in
            if let index = waiters.firstIndex(where: { $0.id == id }) {
                let waiter = waiters.remove(at: index)
                waiter.callback(.failure(.poolExhausted))
            }
        }
        waiters.append(Waiter(id: id, callback: callback, timer: timer))
    }

    /// A connection finished an exchange cleanly and may be reused.
    func release(_ connection: OriginConnection) {
        if let waiter = waiters.popFirst() {
            waiter.timer.cancel()
            waiter.callback(.success(connection))
        } else {
            idle.append(connection)
        }
    }

    /// A connection closed (by either side).
    func connectionClosed(_ connection: OriginConnection) {
        openCount -= 1
        if let index = idle.firstIndex(where: { $0 === connection }) { idle.remove(at: index) }
        if let waiter = waiters.popFirst() {
            waiter.timer.cancel()
            connect(waiter.callback)
        }
    }

    /// Closes every idle connection (at shutdown).
    func closeIdle() {
        let connections = idle
        idle.removeAll()
        for connection in connections { connection.cancel() }
    }

    private func connect(_ callback: @escaping (Result<OriginConnection, OriginFailure>) -> Void) {
        if settings.url.tls && tls == nil {
            callback(.failure(.connectFailed("no TLS client for \(settings.url)")))
            return
        }
        openCount += 1
        let maxHeaderBytes = self.maxHeaderBytes
        let tls = self.tls
        let bootstrap = ClientBootstrap(group: eventLoop)
            .connectTimeout(.nanoseconds(Int64(settings.connectTimeout.nanosecondsClamped)))
            .channelOption(.autoRead, value: false)
            .channelOption(.socketOption(.tcp_nodelay), value: 1)
            .channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    var limits = NIOHTTPDecoderLimitConfiguration()
                    limits.maxHeaderListSize = maxHeaderBytes
                    limits.maxHeaderFieldSize = maxHeaderBytes
                    // Interim responses (103 Early Hints above all) are handed on, not dropped.
                    let decoder = HTTPResponseDecoder(
                        leftOverBytesStrategy: .dropBytes, informationalResponseStrategy: .forward, limitConfiguration: limits)
                    if let tls {
                        try channel.pipeline.syncOperations.addHandler(NIOSSLClientHandler(context: tls.context, serverHostname: tls.serverName))
                    }
                    try channel.pipeline.syncOperations.addHandlers([
                        HTTPRequestEncoder(), ByteToMessageHandler(decoder),
                    ])
                }
            }
        bootstrap.connect(host: settings.url.host, port: settings.url.port).assumeIsolated().whenComplete { [self] result in
            switch result {
            case .success(let channel):
                let connection = OriginConnection(pool: self)
                do {
                    try channel.pipeline.syncOperations.addHandler(connection)
                } catch {
                    openCount -= 1
                    channel.close(promise: nil)
                    callback(.failure(.connectFailed(String(describing: error))))
                    return
                }
                callback(.success(connection))
            case .failure(let error):
                openCount -= 1
                callback(.failure(.connectFailed(String(describing: error))))
            }
        }
    }
}

extension Duration {
    /// Nanoseconds as `Int`, clamped to the representable range.
    package var nanosecondsClamped: Int {
        let (seconds, attoseconds) = components
        let (product, overflow) = seconds.multipliedReportingOverflow(by: 1_000_000_000)
        if overflow { return seconds < 0 ? 0 : Int.max }
        return max(0, Int(product) + Int(attoseconds / 1_000_000_000))
    }
}
