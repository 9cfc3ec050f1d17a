import Logging
import NIOCore
import NIOSSL
import NIOPosix
import Synchronization

/// A Redis client for the whole process: one pipelined connection per event loop (a command sent
/// from a loop never hops threads), reconnecting by itself with backoff, behind a circuit breaker
/// so that a dead or slow Redis costs callers at most one short timeout, then nothing.
public final class RedisClient: Sendable {
    /// Whether Redis is usable, as `/stats` and `/readyz` report it.
    public enum State: String, Sendable {
        case up, down
    }

    public let url: RedisURL
    public let commandTimeout: TimeAmount
    private let connectTimeout: TimeAmount
    /// For `rediss://`: one context shared by every loop's connection (and the subscriber's).
    public let tls: NIOSSLContext?
    private let slots: [ObjectIdentifier: LoopSlot]
    private let group: any EventLoopGroup
    private let logger: Logger
    private let shared: Mutex<State>
    /// Loops with a live connection.
    private let connectedLoops = Atomic<Int>(0)

    public init(
        url: RedisURL, group: any EventLoopGroup, commandTimeout: TimeAmount = .milliseconds(250),
        connectTimeout: TimeAmount = .milliseconds(500), logger: Logger = Logger(label: "vitrine.redis"),
        tls: NIOSSLContext? = nil
    ) {
        self.url = url
        self.tls = tls
        self.group = group
        self.commandTimeout = commandTimeout
        self.connectTimeout = connectTimeout
        self.logger = logger
        self.shared = Mutex(.down)
        var slots: [ObjectIdentifier: LoopSlot] = [:]
        for loop in group.makeIterator() { slots[ObjectIdentifier(loop)] = LoopSlot(eventLoop: loop) }
        self.slots = slots
    }

    public var state: State { shared.withLock { $0 } }

    /// Connects on every loop now (instead of on first use), so the state is known early.
    public func warmUp() {
        for slot in slots.values { slot.eventLoop.execute { self.connectIfNeeded(slot) } }
    }

    /// Sends a command on `loop`'s connection (the caller's loop, ideally).
    public func send(_ arguments: [RESPArgument], on loop: (any EventLoop)? = nil) -> EventLoopFuture<RESPValue> {
        let loop = loop ?? group.next()
        guard let slot = slots[ObjectIdentifier(loop)] else {
            return loop.makeFailedFuture(RedisError.connectionClosed)
        }
        if loop.inEventLoop { return send(arguments, slot: slot) }
        return loop.flatSubmit { self.send(arguments, slot: slot) }
    }

    public func send(_ arguments: [RESPArgument], on loop: (any EventLoop)? = nil) async throws -> RESPValue {
        try await send(arguments, on: loop).get()
    }

    /// Closes every connection and stops reconnecting.
    public func shutdown() async {
        for slot in slots.values {
            let connection = try? await slot.eventLoop.submit { () -> RedisConnection? in
                slot.stopped = true
                defer { slot.connection = nil }
                return slot.connection
            }.get()
            await connection?.close()
        }
    }

    // MARK: Per loop

    /// The connection state of one event loop; touched on that loop only.
    final class LoopSlot: @unchecked Sendable {
        let eventLoop: any EventLoop
        var connection: RedisConnection?
        var connecting = false
        var breaker = CircuitBreaker()
        var stopped = false
        var reconnectTask: Scheduled<Void>?
        /// Counted in `connectedLoops`.
        var counted = false
        /// Commands sent while the connection was being made; sent when it is up.
        var waiting: [(arguments: [RESPArgument], promise: EventLoopPromise<RESPValue>)] = []

        init(eventLoop: any EventLoop) { self.eventLoop = eventLoop }
    }

    private func send(_ arguments: [RESPArgument], slot: LoopSlot) -> EventLoopFuture<RESPValue> {
        let loop = slot.eventLoop
        let now = UInt64(NIODeadline.now().uptimeNanoseconds)
        guard let connection = slot.connection, connection.isActive else {
            connectIfNeeded(slot)
            if slot.connecting && slot.waiting.count < 1024 {
                // Bounded by the connect timeout: the wait ends when the connection is made or fails.
                let promise = loop.makePromise(of: RESPValue.self)
                slot.waiting.append((arguments, promise))
                return promise.futureResult
            }
            return loop.makeFailedFuture(slot.breaker.allows(now: now) ? RedisError.connectionClosed : RedisError.unavailable)
        }
        guard slot.breaker.allows(now: now) else { return loop.makeFailedFuture(RedisError.unavailable) }
        return connection.send(arguments, timeout: commandTimeout).always { result in
            switch result {
            case .success:
                slot.breaker.recordSuccess()
            case .failure(RedisError.server):
                slot.breaker.recordSuccess()
            case .failure:
                if slot.breaker.recordFailure(now: UInt64(NIODeadline.now().uptimeNanoseconds)) {
                    // Slow or broken: start afresh on a new connection after the backoff.
                    slot.connection = nil
                    connection.channel.close(promise: nil)
                    self.scheduleReconnect(slot)
                }
            }
        }
    }

    private func connectIfNeeded(_ slot: LoopSlot) {
        guard !slot.stopped, !slot.connecting, slot.connection == nil, slot.reconnectTask == nil else { return }
        guard slot.breaker.allows(now: UInt64(NIODeadline.now().uptimeNanoseconds)) else {
            scheduleReconnect(slot)
            return
        }
        slot.connecting = true
        RedisConnection.connectFuture(
            to: url, on: slot.eventLoop, connectTimeout: connectTimeout, commandTimeout: commandTimeout, tls: tls)
            .whenComplete { result in
                slot.connecting = false
                switch result {
                case .success(let connection):
                    guard !slot.stopped else {
                        connection.channel.close(promise: nil)
                        for command in slot.waiting { command.promise.fail(RedisError.connectionClosed) }
                        slot.waiting.removeAll()
                        return
                    }
                    slot.connection = connection
                    slot.breaker.recordSuccess()
                    self.updateState(slot, connected: true)
                    let waiting = slot.waiting
                    slot.waiting.removeAll()
                    for command in waiting { self.send(command.arguments, slot: slot).cascade(to: command.promise) }
                    connection.closeFuture.whenComplete { _ in
                        slot.eventLoop.execute {
                            if slot.connection === connection { slot.connection = nil }
                            self.updateState(slot, connected: false)
                            self.scheduleReconnect(slot)
                        }
                    }
                case .failure(let error):
                    let waiting = slot.waiting
                    slot.waiting.removeAll()
                    for command in waiting { command.promise.fail(RedisError.connectionClosed) }
                    slot.breaker.recordFailure(now: UInt64(NIODeadline.now().uptimeNanoseconds))
                    self.logger.debug("redis connect failed", metadata: ["url": "\(self.url)", "error": "\(error)"])
                    self.updateState(slot, connected: false)
                    self.scheduleReconnect(slot)
                }
            }
    }

    private func scheduleReconnect(_ slot: LoopSlot) {
        guard !slot.stopped, slot.reconnectTask == nil else { return }
        let now = UInt64(NIODeadline.now().uptimeNanoseconds)
        var delay: UInt64 = 50_000_000
        if case .open(let until) = slot.breaker.state, until > now { delay = until - now }
        slot.reconnectTask = slot.eventLoop.scheduleTask(in: .nanoseconds(Int64(delay))) {
            slot.reconnectTask = nil
            self.connectIfNeeded(slot)
        }
    }

    /// Up while any loop has a connection; logged once per change.
    private func updateState(_ slot: LoopSlot, connected: Bool) {
        if connected != slot.counted {
            slot.counted = connected
            connectedLoops.add(connected ? 1 : -1, ordering: .relaxed)
        }
        let next: State = connectedLoops.load(ordering: .relaxed) > 0 ? .up : .down
        let previous = shared.withLock { state -> State in
            defer { state = next }
            return state
        }
        if previous != next {
            if next == .up {
                logger.info("redis up", metadata: ["url": "\(url)"])
            } else {
                logger.warning("redis down: serving from L1 and the origin until it is back", metadata: ["url": "\(url)"])
            }
        }
    }
}
