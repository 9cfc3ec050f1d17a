import Foundation
import Logging
import NIOCore
import PostgresNIO
import ServiceLifecycle
import Synchronization
import VitrineCore

/// The Postgres change feed: `LISTEN` only wakes it; the truth is the outbox table, read after a
/// cursor that survives restarts. On any connection loss it reconnects with backoff and replays
/// what it missed; a cursor older than what the outbox retains makes it purge everything, loudly.
///
/// Two connections: one only listens (postgres-nio wants it dedicated), one reads the outbox and
/// runs the heartbeat that notices half-open sockets.
public final class ChangeFeed: Service, Sendable {
    /// What `/stats` shows.
    public struct Status: Sendable {
        public var state = "disconnected"
        public var cursor: Int64 = 0
        /// Milliseconds between the last applied row's commit and its application.
        public var lagMilliseconds: Int64 = 0
        /// Rows committed and not yet applied, as of the last batch read.
        public var lagRows: Int64 = 0
        /// Rows applied on catching up after a (re)connect.
        public var replayedRows = 0
        public var reconnects = 0
        public var fullPurges = 0
        public var appliedRows = 0

        public init() {}
    }

    private let url: PostgresURL
    private let channel: String
    private let cursorStore: any CursorStore
    private let logger: Logger
    private let apply: @Sendable (_ tags: [String]) async -> Void
    private let purgeEverything: @Sendable () async -> Void
    private let heartbeatInterval: Duration
    private let heartbeatTimeout: Duration
    private let pollInterval: Duration
    private let state: Mutex<Status>
    /// Whether a cursor was saved before (else this is the node's first start).
    private var hasSavedCursor: Bool {
        get { savedCursor.load(ordering: .relaxed) }
        set { savedCursor.store(newValue, ordering: .relaxed) }
    }
    private let savedCursor = Atomic<Bool>(false)

    /// - Parameters:
    ///   - apply: purges the tags of one outbox row (L1, L2, fan-out).
    ///   - purgeEverything: called when purges were lost (the cursor fell behind the retention).
    public init(
        url: PostgresURL, channel: String, cursorStore: any CursorStore, logger: Logger,
        heartbeatInterval: Duration = .seconds(5), heartbeatTimeout: Duration = .seconds(3), pollInterval: Duration = .seconds(1),
        apply: @escaping @Sendable (_ tags: [String]) async -> Void,
        purgeEverything: @escaping @Sendable () async -> Void
    ) {
        self.url = url
        self.channel = channel
        self.cursorStore = cursorStore
        self.logger = logger
        self.heartbeatInterval = heartbeatInterval
        self.heartbeatTimeout = heartbeatTimeout
        self.pollInterval = pollInterval
        self.apply = apply
        self.purgeEverything = purgeEverything
        self.state = Mutex(Status())
    }

    public var status: Status { state.withLock { $0 } }

    public func run() async throws {
        var failures = 0
        // The saved cursor, once: a store that cannot answer now is retried with the connection.
        var loaded = false
        while !Task.isCancelled {
            do {
                if !loaded {
                    let saved = try await cursorStore.load()
                    state.withLock { $0.cursor = saved ?? 0 }
                    hasSavedCursor = saved != nil
                    loaded = true
                }
                try await runConnected()
            } catch is CancellationError {
                return
            } catch {
                if Task.isCancelled { return }
                let wasConnected = state.withLock { state in
                    defer {
                        state.state = "disconnected"
                        state.reconnects += 1
                    }
                    return state.state == "connected"
                }
                // Backoff grows with failures in a row, not with incidents over the node's life.
                failures = wasConnected ? 1 : failures + 1
                logger.warning("change feed disconnected; reconnecting", metadata: ["error": "\(error)", "postgres": "\(url)"])
            }
            try? await Task.sleep(for: .milliseconds(min(5_000, 100 << min(failures, 6))))
        }
    }

    private func runConnected() async throws {
        let listener = try await connect(id: 1)
        let reader: PostgresConnection
        do {
            reader = try await connect(id: 2)
        } catch {
            try? await listener.close()
            throw error
        }
        defer {
            Task {
                try? await listener.close()
                try? await reader.close()
            }
        }
        let (wakeups, wake) = AsyncStream.makeStream(of: Void.self, bufferingPolicy: .bufferingNewest(1))
        // The workers are not children of a task group: a call on a connection killed under it
        // may never complete, and a group would wait for it forever. The first failure of any
        // worker ends this connection; the workers are then cancelled and both connections closed.
        let (failures, fail) = AsyncStream.makeStream(of: (any Error).self, bufferingPolicy: .bufferingNewest(1))
        var workers: [Task<Void, Never>] = []
        func start(_ name: String, _ work: @escaping @Sendable () async throws -> Void) {
            workers.append(Task {
                do {
                    try await work()
                    fail.yield(FeedError.listenEnded)
                } catch {
                    self.logger.debug("change feed: \(name) failed", metadata: ["error": "\(String(reflecting: error))"])
                    fail.yield(error)
                }
            })
        }
        defer {
            for worker in workers { worker.cancel() }
            wake.finish()
            fail.finish()
            _ = listener.close() as EventLoopFuture<Void>
            _ = reader.close() as EventLoopFuture<Void>
        }
        start("listen") {
            try await listener.listen(on: self.channel) { notifications in
                for try await _ in notifications { wake.yield() }
            }
        }
        // The heartbeat first: it also bounds the catch-up below, whose queries would otherwise
        // wait forever on a connection killed under them.
        start("heartbeat") {
            while true {
                try await Task.sleep(for: self.heartbeatInterval)
                // A half-open socket never errors by itself: a heartbeat that does not answer in
                // time ends the connection.
                try await self.withTimeout(self.heartbeatTimeout) { _ = try await reader.query("SELECT 1", logger: self.logger).collect() }
            }
        }
        start("drain") {
            // Listening first, then catching up: nothing committed in between can be missed.
            try await Task.sleep(for: .milliseconds(20))
            try await self.resume(reader)
            self.state.withLock { $0.state = "connected" }
            self.logger.info("change feed connected", metadata: ["postgres": "\(self.url)", "cursor": "\(self.status.cursor)"])
            for await _ in wakeups { try await self.drain(reader, replay: false) }
        }
        start("poll") {
            // A notification wakes the reader at once; the poll is a safety net.
            while true {
                try await Task.sleep(for: self.pollInterval)
                wake.yield()
            }
        }
        for await failure in failures { throw failure }
        throw CancellationError()
    }

    /// A new connection, or an error when Postgres does not finish the start-up in time (a backend
    /// killed during it can leave the attempt waiting forever).
    private func connect(id: Int) async throws -> PostgresConnection {
        let made = MadeConnection()
        let configuration = url.configuration
        let logger = logger
        do {
            try await withTimeout(max(heartbeatTimeout, .seconds(10))) {
                let connection = try await PostgresConnection.connect(configuration: configuration, id: id, logger: logger)
                let late = made.connection.withLock { slot in
                    if !slot.abandoned { slot.value = connection }
                    return slot.abandoned
                }
                if late { try? await connection.close() }
            }
        } catch {
            let orphan = made.connection.withLock { slot in
                slot.abandoned = true
                return slot.value
            }
            try? await orphan?.close()
            throw error
        }
        guard let connection = made.connection.withLock({ $0.value }) else { throw FeedError.heartbeatTimeout }
        return connection
    }

    /// On (re)connecting: purge everything if purges were pruned unread, then replay after the cursor.
    private func resume(_ reader: PostgresConnection) async throws {
        let rows = try await reader.query(
            "SELECT coalesce(min(id), 0), (SELECT last_value FROM vitrine_outbox_id_seq) FROM vitrine_outbox", logger: logger
        ).collect()
        var oldestOrZero: Int64 = 0
        var newest: Int64 = 0
        if let row = rows.first { (oldestOrZero, newest) = try row.decode((Int64, Int64).self) }
        let oldest: Int64? = oldestOrZero == 0 ? nil : oldestOrZero
        var cursor = OutboxCursor(position: status.cursor)
        if !hasSavedCursor {
            // First start: what happened before this node existed is not its concern.
            cursor.advance(to: oldest == nil ? 0 : newest)
            await save(cursor.position)
            hasSavedCursor = true
            return
        }
        if case .purgeEverything(let position) = cursor.resume(oldestRetained: oldest, newest: newest) {
            logger.error(
                "change feed cursor is older than the outbox retains: purges were lost, purging everything",
                metadata: ["cursor": "\(cursor.position)", "oldest": "\(oldest.map(String.init) ?? "none")"])
            await purgeEverything()
            state.withLock { $0.fullPurges += 1 }
            cursor.advance(to: position)
            await save(cursor.position)
        }
        try await drain(reader, replay: true)
    }

    /// Applies every outbox row after the cursor, in batches, saving the cursor after each batch.
    private func drain(_ reader: PostgresConnection, replay: Bool) async throws {
        while true {
            let position = status.cursor
            let rows = try await reader.query(
                """
                SELECT id, tags, (extract(epoch FROM clock_timestamp() - created_at) * 1000)::bigint,
                       (SELECT count(*) FROM vitrine_outbox WHERE id > \(position))
                FROM vitrine_outbox WHERE id > \(position) ORDER BY id LIMIT 500
                """, logger: logger
            ).collect()
            guard !rows.isEmpty else {
                state.withLock { $0.lagRows = 0 }
                return
            }
            var last = position
            var lag: Int64 = 0
            var pending: Int64 = 0
            for row in rows {
                let (id, tags, age, waiting) = try row.decode((Int64, [String], Int64, Int64).self)
                await apply(tags)
                last = id
                lag = age
                pending = waiting
            }
            await save(last)
            state.withLock {
                $0.lagMilliseconds = lag
                $0.lagRows = max(0, pending - Int64(rows.count))
                $0.appliedRows += rows.count
                if replay { $0.replayedRows += rows.count }
            }
            if rows.count < 500 { return }
        }
    }

    private func save(_ position: Int64) async {
        state.withLock { $0.cursor = position }
        await cursorStore.save(position)
    }

    /// Runs `body`, throwing `heartbeatTimeout` if it has not finished after `timeout`. It does not
    /// wait for a `body` that never finishes (it is left to end with its connection).
    private func withTimeout(_ timeout: Duration, _ body: @escaping @Sendable () async throws -> Void) async throws {
        do {
            try await withDeadline(timeout, body)
        } catch is DeadlineExceeded {
            throw FeedError.heartbeatTimeout
        }
    }

}

/// A connection being made under a deadline: taken by the caller, or closed if it came too late.
private final class MadeConnection: Sendable {
    struct Slot {
        var value: PostgresConnection?
        var abandoned = false
    }

    let connection = Mutex(Slot())
}
