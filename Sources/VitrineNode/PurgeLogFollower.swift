import Logging
import NIOCore
import Synchronization
import VitrineCore
import VitrineProxy

/// Follows the fleet's purge log for one node: notes the log id of every purge message it
/// receives, and after a subscription gap reads the purges it missed from the log (keeping the
/// rest of L1) instead of dropping L1. Only when the log cannot say what was missed (another
/// generation: Redis restarted empty; or trimmed past the gap) does it drop L1, loudly.
final class PurgeLogFollower: Sendable {
    typealias Status = PurgeLogStatus

    private let tier: RedisTier
    private let nodeID: String
    private let loop: any EventLoop
    private let logger: Logger
    private let apply: @Sendable (PurgeRequest) -> Void
    private let dropL1: @Sendable () -> Void
    private let state = Mutex(Status())

    init(
        tier: RedisTier, nodeID: String, loop: any EventLoop, logger: Logger, apply: @escaping @Sendable (PurgeRequest) -> Void,
        dropL1: @escaping @Sendable () -> Void
    ) {
        self.tier = tier
        self.nodeID = nodeID
        self.loop = loop
        self.logger = logger
        self.apply = apply
        self.dropL1 = dropL1
    }

    var status: Status { state.withLock { $0 } }

    /// A purge message arrived (from any node, this one included).
    func received(_ message: FanoutMessage) {
        guard let id = message.id.flatMap(PurgeLog.EntryID.init(parsing:)) else { return }
        state.withLock { state in
            state.lastSeen = max(state.lastSeen, id)
            // Contiguous while subscribed: pub/sub delivers in log order.
            if !state.inGap { state.lastApplied = max(state.lastApplied, id) }
        }
    }

    /// The subscription is live for the first time: what came before is not this node's concern.
    func subscribed() async {
        // Until the log answers, the generation is unknown, and a gap then drops L1 (nothing to
        // catch up from). A gap that begins meanwhile ends the wait.
        do {
            let (generation, bounds) = try await readLog(attempts: 100, stopping: { self.state.withLock { $0.inGap } })
            state.withLock { state in
                if state.generation == nil { state.generation = generation }
                state.lastApplied = max(state.lastApplied, bounds.last)
            }
        } catch {
            logger.warning("purge log unreadable at start: a subscription gap will drop L1", metadata: ["error": "\(error)"])
        }
    }

    /// The log's generation and bounds, retried every 100 ms: the command connection may come up
    /// (or back) a moment after the subscription. Throws the last error after `attempts`, or as
    /// soon as `stopping` says so.
    private func readLog(
        attempts: Int, stopping: () -> Bool = { false }
    ) async throws -> (generation: String, bounds: (last: PurgeLog.EntryID, maxDeleted: PurgeLog.EntryID)) {
        var attempt = 0
        while true {
            do {
                return (try await tier.generation(on: loop).get(), try await tier.logBounds(on: loop).get())
            } catch {
                attempt += 1
                if attempt == 1 { logger.debug("purge log not readable yet; retrying", metadata: ["error": "\(error)"]) }
                if attempt >= attempts || stopping() { throw error }
                try? await Task.sleep(for: .milliseconds(100))
            }
        }
    }

    /// The subscription was lost: from now on purges may be missed.
    func lost() {
        state.withLock { $0.inGap = true }
    }

    /// The subscription is live again: apply what the log holds after the gap began, or drop L1.
    func resubscribed() async {
        let (from, known) = state.withLock { ($0.lastApplied, $0.generation) }
        do {
            // Retried for a few seconds before the log is called unreadable.
            let (generation, bounds) = try await readLog(attempts: 50)
            switch PurgeLog.catchUp(lastApplied: from, knownGeneration: known, now: PurgeLog.State(generation: generation, maxDeleted: bounds.maxDeleted)) {
            case .dropL1(let reason):
                drop(reason: reason, generation: generation, position: bounds.last)
            case .replay(let after):
                var position = after
                var applied = 0
                while true {
                    let entries = try await tier.logEntries(after: position, count: 500, on: loop).get()
                    for entry in entries {
                        if entry.message.node != nodeID { apply(entry.message.request) }
                        position = entry.id
                        applied += 1
                    }
                    if entries.count < 500 { break }
                }
                let caughtUpTo = position
                state.withLock { state in
                    state.inGap = false
                    state.lastApplied = max(state.lastSeen, caughtUpTo)
                    state.caughtUp += applied
                }
                logger.info("purge fan-out was interrupted: caught up from the purge log", metadata: ["purges": "\(applied)", "from": "\(from)"])
            }
        } catch {
            drop(reason: "the purge log could not be read (\(error))", generation: nil, position: nil)
        }
    }

    private func drop(reason: String, generation: String?, position: PurgeLog.EntryID?) {
        logger.error("purges may have been missed: dropping L1 (L2 still serves)", metadata: ["reason": "\(reason)"])
        dropL1()
        state.withLock { state in
            state.inGap = false
            state.l1Drops += 1
            state.lastDropCause = reason
            if let generation { state.generation = generation }
            if let position { state.lastApplied = max(state.lastSeen, position) }
        }
    }
}
