import Foundation
import Histogram
import NIOCore
import NIOPosix

/// One load run on one event loop (as `wrk -t1`): every connection, the request mix, the
/// histogram and the counters live on that loop, so nothing is locked on the way.
final class LoadRun {
    enum Failure: String, CaseIterable {
        case connect, closed, closedIdle = "closed_idle", protocolError = "protocol"
    }

    let options: Options
    let loop: any EventLoop
    private var mix: RequestMix
    private(set) var histogram = Histogram<UInt64>(highestTrackableValue: 60_000_000, numberOfSignificantValueDigits: .three)
    private var secondHistogram = Histogram<UInt64>(highestTrackableValue: 60_000_000, numberOfSignificantValueDigits: .three)
    private(set) var completed = 0
    private(set) var statusErrors: [Int: Int] = [:]
    private(set) var failures: [Failure: Int] = [:]
    private(set) var hits = 0
    private(set) var withCacheHeader = 0
    private var kindCounts = [Int](repeating: 0, count: RequestMix.Kind.allCases.count)
    /// Requests completed, by kind (kinds with none left out).
    var kinds: [RequestMix.Kind: Int] {
        Dictionary(uniqueKeysWithValues: RequestMix.Kind.allCases.compactMap { kind in
            kindCounts[kind.rawValue] > 0 ? (kind, kindCounts[kind.rawValue]) : nil
        })
    }
    private var startedAt: UInt64 = 0
    private var endsAt: UInt64 = 0
    private(set) var elapsed: Double = 0
    private var stopped = false
    private var secondCompleted = 0
    private var connections: [LoadConnection] = []
    /// Closed loop: connections whose response came in during this event-loop tick. Their next
    /// requests go out together once the tick's reads are done, as wrk's do (it writes when epoll
    /// next reports the socket writable), so the server is woken once per batch, not per request.
    private var due: [LoadConnection] = []
    private var sending: [LoadConnection] = []
    private let finished: EventLoopPromise<Void>
    /// Open loop: nanoseconds between two requests of one connection.
    private let interval: UInt64?

    init(options: Options, loop: any EventLoop) {
        self.options = options
        self.loop = loop
        self.mix = RequestMix(options: options)
        self.finished = loop.makePromise()
        self.interval = options.rate.map { UInt64(Double(options.connections) / $0 * 1e9) }
    }

    static func now() -> UInt64 { DispatchTime.now().uptimeNanoseconds }

    /// Connects, runs for the duration, and completes when done.
    func start() -> EventLoopFuture<Void> {
        let bootstrap = ClientBootstrap(group: loop)
            .channelOption(.socketOption(.tcp_nodelay), value: 1)
        // Everything of the run lives on its one loop: the initializer runs there too.
        let bound = NIOLoopBound(self, eventLoop: loop)
        let connected = (0..<options.connections).map { index in
            bootstrap.channelInitializer { channel in
                channel.eventLoop.makeCompletedFuture {
                    let connection = LoadConnection(index: index, run: bound.value)
                    bound.value.connections.append(connection)
                    try channel.pipeline.syncOperations.addHandler(connection)
                }
            }.connect(host: options.host, port: options.port)
        }
        EventLoopFuture.whenAllComplete(connected, on: loop).assumeIsolated().whenComplete { [self] results in
            let channels = ((try? results.get()) ?? []).compactMap { try? $0.get() }
            failures[.connect, default: 0] += options.connections - channels.count
            guard !channels.isEmpty else {
                finished.fail(LoadError("cannot connect to \(options.host):\(options.port)"))
                return
            }
            startedAt = Self.now()
            endsAt = startedAt + UInt64(options.duration * 1e9)
            for connection in connections { begin(connection) }
            loop.assumeIsolated().scheduleTask(in: .nanoseconds(Int64(options.duration * 1e9))) { [self] in stop(channels) }
            if options.progress { scheduleProgress(second: 1) }
        }
        return finished.futureResult
    }

    private func begin(_ connection: LoadConnection) {
        if let interval {
            // Spread the connections' first requests over one interval.
            connection.nextIntended = startedAt + interval * UInt64(connection.index) / UInt64(options.connections)
            sendWhenDue(connection)
        } else {
            sendNext(connection, since: Self.now())
        }
    }

    func connectionReady(_ connection: LoadConnection) {
        // Requests start once every connection is up (see `start`).
    }

    private func sendNext(_ connection: LoadConnection, since: UInt64) {
        guard !stopped else { return }
        connection.send(mix.next(), since: since)
    }

    /// Open loop: send at the intended time; a connection behind schedule sends at once, and the
    /// wait counts in the latency (coordinated omission corrected).
    private func sendWhenDue(_ connection: LoadConnection) {
        guard !stopped, let interval else { return }
        let intended = connection.nextIntended
        let now = Self.now()
        if intended <= now {
            connection.nextIntended = intended + interval
            sendNext(connection, since: intended)
        } else {
            loop.assumeIsolated().scheduleTask(in: .nanoseconds(Int64(intended - now))) { [self] in
                guard connection.inFlight == nil else { return }
                sendWhenDue(connection)
            }
        }
    }

    func completed(_ connection: LoadConnection, request: LoadConnection.InFlight, status: Int, cacheResult: UInt8?) {
        let now = Self.now()
        guard !stopped else { return }
        let latency = (now &- request.since) / 1_000
        histogram.record(latency)
        if options.progress { secondHistogram.record(latency) }
        completed += 1
        secondCompleted += 1
        kindCounts[request.kind.rawValue] += 1
        if status >= 400 || status < 100 { statusErrors[status, default: 0] += 1 }
        if let cacheResult {
            withCacheHeader += 1
            if cacheResult == UInt8(ascii: "H") { hits += 1 }
        }
        if interval != nil { sendWhenDue(connection) } else { sendAfterReads(connection) }
    }

    private func sendAfterReads(_ connection: LoadConnection) {
        due.append(connection)
        // Tasks run after the tick's I/O events: one task per batch.
        if due.count == 1 { loop.assumeIsolated().execute { [self] in sendDue() } }
    }

    private func sendDue() {
        swap(&due, &sending)
        let now = Self.now()
        for connection in sending { sendNext(connection, since: now) }
        sending.removeAll(keepingCapacity: true)
    }

    func failed(_ connection: LoadConnection, _ failure: Failure) {
        guard !stopped, failure != .closedIdle else { return }
        failures[failure, default: 0] += 1
    }

    private func stop(_ channels: [any Channel]) {
        stopped = true
        elapsed = Double(Self.now() - startedAt) / 1e9
        if options.progress { FileHandle.standardError.write(Data("\r\u{1B}[K".utf8)) }
        for channel in channels { channel.close(promise: nil) }
        finished.succeed()
    }

    private func scheduleProgress(second: Int) {
        loop.assumeIsolated().scheduleTask(in: .seconds(1)) { [self] in
            guard !stopped else { return }
            let p99 = Double(secondHistogram.valueAtPercentile(99)) / 1_000
            let line = String(
                format: "\r\u{1B}[K[%d/%.0fs] %@ req/s  p99 %.2f ms  errors %d", second, options.duration,
                Report.grouped(secondCompleted), p99, failures.values.reduce(0, +) + statusErrors.values.reduce(0, +))
            FileHandle.standardError.write(Data(line.utf8))
            secondCompleted = 0
            secondHistogram.reset()
            scheduleProgress(second: second + 1)
        }
    }
}

struct LoadError: Error, CustomStringConvertible {
    let description: String
    init(_ description: String) { self.description = description }
}
