import Foundation
import Logging
import NIOCore
import PostgresNIO
import ServiceLifecycle
import Synchronization
import VitrineCore
import VitrineDeadline

/// The Postgres change feed: `LISTEN` only wakes it; the truth is the outbox table, read after a
/// cursor that survives restarts. On any connection loss it reconnects with backoff and replays
/// what it missed; a cursor older than what the outbox retains makes it purge everything, loudly.
///
/// Two connections: one only listens (postgres-nio wants it dedicated), one reads the outbox and
/// runs the heartbeat that notices half-open sockets.
public final class ChangeFeed: Service, Sendable {
    /// What `/stats` shows.
    /// What `/stats` and `/metrics` show of the feed (a plain value in VitrineCore, so that the
    /// proxy shows it without knowing the feed).
    public typealias Status = ChangeFeedStatus

    private let url: PostgresURL
    /// Built once from the URL (TLS reads its trust roots then).
    private let connectionConfiguration: PostgresConnection.Configuration
    private let channel: String
    private let cursorStore: any CursorStore
    private let logger: Logger
    private let apply: @Sendable (_ tags: [String]) async -> Void
    private let purgeEverything: @Sendable () async -> Void
    private let heartbeatInterval: Duration
    private let heartbeatTimeout: Duration
    private let pollInterval: Duration
    private let state: Mutex<Status>
    /// The cursor and the outbox it belongs to, once connected; the saved text before that.
    private let progress = Mutex(Progress())

    private struct Progress {
        enum Saved { case notLoaded, none, text(String) }
        var saved = Saved.notLoaded
        var cursor: OutboxCursor?
        var outbox: String?
    }

    /// - Parameters:
    ///   - apply: purges tags (L1, L2, fan-out): those of the rows of one page read from the outbox.
    ///   - purgeEverything: called when purges were lost (the cursor fell behind the retention).
    /// - Throws: `FeedError.invalidURL` when the URL's TLS settings cannot be used (an unreadable
    ///   `sslrootcert`).
    public init(
        url: PostgresURL, channel: String, cursorStore: any CursorStore, logger: Logger,
        heartbeatInterval: Duration = .seconds(5), heartbeatTimeout: Duration = .seconds(3), pollInterval: Duration = .seconds(1),
        apply: @escaping @Sendable (_ tags: [String]) async -> Void,
        purgeEverything: @escaping @Sendable () async -> Void
    ) throws {
        self.url = url
        self.connectionConfiguration = try url.configuration()
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
        while !Task.isCancelled {
            do {
                // The saved cursor, once: a store that cannot answer now is retried with the connection.
                if case .notLoaded = progress.withLock({ $0.saved }) {
                    let text = try await cursorStore.load()
                    progress.withLock { $0.saved = text.map { .text($0) } ?? .none }
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
                if case FeedError.outboxNotInstalled = error {
                    logger.error(
                        "change feed: the outbox has no identity: run config/postgres/vitrine.sql of this version on the database",
                        metadata: ["postgres": "\(url)"])
                } else {
                    logger.warning("change feed disconnected; reconnecting", metadata: ["error": "\(error)", "postgres": "\(url)"])
                }
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
            self.logger.info("change feed connected", metadata: ["postgres": "\(self.url)", "position": "\(self.status.position)"])
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
        let configuration = connectionConfiguration
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

    /// On (re)connecting: check that the cursor belongs to this outbox and can still be trusted
    /// (else purge everything, loudly), then replay after it.
    private func resume(_ reader: PostgresConnection) async throws {
        let outbox = try await outboxState(reader)
        let (known, knownOutbox, saved) = progress.withLock { ($0.cursor, $0.outbox, $0.saved) }
        if known != nil, knownOutbox == outbox.identity {
            // A reconnect within this run: the cursor in memory (pending transactions included) holds.
            return try await drain(reader, replay: true)
        }
        let decision: OutboxCursor.Resume
        if let known, let knownOutbox {
            // The database changed under a running node (a failover to a restored copy, say).
            decision = OutboxCursor.resume(saved: SavedCursor(outbox: knownOutbox, position: known.position), outbox: outbox)
        } else if case .text(let text) = saved {
            if let cursor = SavedCursor(decoding: text) {
                decision = OutboxCursor.resume(saved: cursor, outbox: outbox)
            } else {
                decision = .purgeEverything(reason: "the saved cursor is not one this version reads (\(text.prefix(80)))")
            }
        } else {
            decision = OutboxCursor.resume(saved: nil, outbox: outbox)
        }
        switch decision {
        case .firstStart:
            // What happened before this node existed is not its concern.
            progress.withLock {
                $0.cursor = .startingAt(outbox.snapshot)
                $0.outbox = outbox.identity
            }
            await saveCursor()
        case .replay(let position):
            progress.withLock {
                $0.cursor = OutboxCursor(position: position)
                $0.outbox = outbox.identity
            }
        case .purgeEverything(let reason):
            logger.error("change feed: \(reason); purging everything", metadata: ["postgres": "\(url)"])
            await purgeEverything()
            state.withLock { $0.fullPurges += 1 }
            progress.withLock {
                $0.cursor = .startingAt(outbox.snapshot)
                $0.outbox = outbox.identity
            }
            await saveCursor()
        }
        try await drain(reader, replay: true)
    }

    /// The identity of the outbox connected to, how far its ids went, what was deleted from it,
    /// and a snapshot.
    private func outboxState(_ reader: PostgresConnection) async throws -> OutboxCursor.OutboxState {
        let rows: [PostgresRow]
        do {
            rows = try await reader.query(
            """
            SELECT (SELECT system_identifier FROM pg_control_system())::text || ':'
                     || (SELECT oid FROM pg_database WHERE datname = current_database())::text || ':'
                     || i.outbox::text || ':' || i.generation::text,
                   (SELECT last_value FROM vitrine_outbox_id_seq), i.pruned_xid::text, i.pruned_id,
                   pg_current_snapshot()::text
            FROM vitrine_outbox_identity i WHERE i.outbox = 'vitrine_outbox'::regclass::oid
            """, logger: logger
            ).collect()
        } catch let error as PSQLError where error.serverInfo?[.sqlState] == "42P01" {
            // undefined_table: the outbox, or its identity table, is missing.
            throw FeedError.outboxNotInstalled
        }
        guard let row = rows.first else { throw FeedError.outboxNotInstalled }
        let (identity, lastID, prunedXID, prunedID, snapshotText) = try row.decode((String, Int64, String, Int64, String).self)
        guard let prunedXID = UInt64.parsingDigits(Substring(prunedXID)), let snapshot = PostgresSnapshot(parsing: snapshotText) else {
            throw FeedError.unexpectedReply("outbox state \(prunedXID) \(snapshotText)")
        }
        return OutboxCursor.OutboxState(
            identity: identity, lastID: lastID, pruned: OutboxPosition(xid: prunedXID, id: prunedID), snapshot: snapshot)
    }

    static let pageSize = 500

    /// Reads and applies, page by page, the rows after the cursor's frontier and those of
    /// transactions it is waiting for; saves the cursor after each page that moved it.
    private func drain(_ reader: PostgresConnection, replay: Bool) async throws {
        guard var cursor = progress.withLock({ $0.cursor }) else { return }
        var after = cursor.position
        while true {
            let frontier = cursor.frontier
            let pending = cursor.pending.map(String.init).joined(separator: ",")
            // One statement, so that the rows and the snapshot they are judged by are the same.
            // Two index range scans on (xid, id): rows after the frontier, and rows of pending
            // transactions between the page start and the frontier.
            let rows = try await reader.query(
                """
                WITH snap AS (SELECT pg_current_snapshot()::text AS s,
                                     (SELECT count(*) FROM vitrine_outbox WHERE (xid, id) > ('\(unescaped: String(frontier.xid))'::xid8, \(unescaped: String(frontier.id)))) AS waiting),
                fresh AS (SELECT id, xid, tags, created_at FROM vitrine_outbox
                          WHERE (xid, id) > ('\(unescaped: String(max(frontier, after).xid))'::xid8, \(unescaped: String(max(frontier, after).id)))
                          ORDER BY xid, id LIMIT \(unescaped: String(Self.pageSize))),
                late AS (SELECT id, xid, tags, created_at FROM vitrine_outbox
                         WHERE xid = ANY('{\(unescaped: pending)}'::xid8[])
                           AND (xid, id) > ('\(unescaped: String(after.xid))'::xid8, \(unescaped: String(after.id)))
                           AND (xid, id) <= ('\(unescaped: String(frontier.xid))'::xid8, \(unescaped: String(frontier.id)))
                         ORDER BY xid, id LIMIT \(unescaped: String(Self.pageSize))),
                page AS (SELECT * FROM (SELECT * FROM late UNION ALL SELECT * FROM fresh) AS both_kinds ORDER BY xid, id LIMIT \(unescaped: String(Self.pageSize)))
                SELECT snap.s, snap.waiting, page.id, page.xid::text, page.tags,
                       (extract(epoch FROM clock_timestamp() - page.created_at) * 1000)::bigint
                FROM snap LEFT JOIN page ON true ORDER BY page.xid, page.id
                """, logger: logger
            ).collect()
            var snapshot: PostgresSnapshot?
            var waiting: Int64 = 0
            var read: [(position: OutboxPosition, tags: [String], age: Int64)] = []
            for row in rows {
                let (snapshotText, count, id, xidText, tags, age) = try row.decode((String, Int64, Int64?, String?, [String]?, Int64?).self)
                if snapshot == nil {
                    guard let parsed = PostgresSnapshot(parsing: snapshotText) else {
                        throw FeedError.unexpectedReply("snapshot \(snapshotText.prefix(80))")
                    }
                    snapshot = parsed
                    waiting = count
                }
                guard let id, let xidText else { continue }
                guard let xid = UInt64.parsingDigits(Substring(xidText)) else { throw FeedError.unexpectedReply("xid \(xidText.prefix(40))") }
                read.append((OutboxPosition(xid: xid, id: id), tags ?? [], age ?? 0))
            }
            guard let snapshot else { throw FeedError.unexpectedReply("no snapshot") }
            let complete = read.count < Self.pageSize
            let before = cursor.position
            let decisions = cursor.absorb(read.map(\.position), snapshot: snapshot, complete: complete)
            var applied = 0
            var lastApplied: Int64?
            var lag: Int64 = 0
            // The page's rows as one purge (their tags, each once): one round trip to the shared
            // tier however many rows, and purges commute, so their order does not matter.
            var tags: [String] = []
            var seen = Set<String>()
            for (row, apply) in zip(read, decisions) where apply {
                for tag in row.tags where seen.insert(tag).inserted { tags.append(tag) }
                applied += 1
                lastApplied = max(lastApplied ?? row.position.id, row.position.id)
                lag = row.age
            }
            if !tags.isEmpty { await self.apply(tags) }
            let appliedCount = applied
            progress.withLock { $0.cursor = cursor }
            state.withLock { status in
                status.position = cursor.position.description
                status.pendingTransactions = cursor.pending.count
                if let lastApplied { status.cursor = max(status.cursor, lastApplied) }
                if appliedCount > 0 { status.lagMilliseconds = lag }
                status.lagRows = max(0, waiting - Int64(appliedCount))
                status.appliedRows += appliedCount
                if replay { status.replayedRows += appliedCount }
            }
            if cursor.position != before { await saveCursor() }
            if complete { return }
            after = read.last!.position
        }
    }

    private func saveCursor() async {
        guard let (cursor, identity) = progress.withLock({ progress in progress.cursor.flatMap { cursor in progress.outbox.map { (cursor, $0) } } })
        else { return }
        state.withLock { $0.position = cursor.position.description }
        await cursorStore.save(SavedCursor(outbox: identity, position: cursor.position).encoded)
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
