import Foundation
import Logging
import NIOCore
import Synchronization
import VitrineCore
import VitrineProxy
import VitrineRedis

/// The shared tier on Redis.
///
/// Keys: `vt:e:KEY` holds the encoded entry, `vt:m:KEY` its metadata (the purge sequence its
/// fetch began at, then its tags, one a line), `vt:tag:TAG` the sequence of the tag's last purge,
/// `vt:seq` the global purge sequence. A purge of any size is one `INCR` and one `SET` per tag; a
/// lookup reads the entry and checks its tags in the same round trip (a Lua script), so an entry
/// fetched before a purge of one of its tags is never served, whichever node stored it.
final class RedisTier: SharedTier {
    /// The longest anything is kept in L2, and how long a tag's purge is remembered.
    static let maxLifetime: Duration = .seconds(86_400)

    let client: RedisClient
    let nodeID: String
    /// The pub/sub channel purges are fanned out on.
    let channel: String
    private let logger: Logger
    /// Script text → SHA1 from `SCRIPT LOAD`: scripts are sent once, then called by hash.
    private let scriptHashes = Mutex<[String: String]>([:])

    init(client: RedisClient, nodeID: String, channel: String, logger: Logger) {
        self.client = client
        self.channel = channel
        self.nodeID = nodeID
        self.logger = logger
    }

    var state: String { client.state.rawValue }

    /// KEYS: entry, meta, sequence, lease, soft mark. ARGV: node id, lease milliseconds (0: take
    /// none, only tell whether another node holds it). Returns {entry or nil, sequence, 1 when
    /// this node may fetch, 1 when the entry was soft-purged after its fetch began}.
    ///
    /// A hard purge of a tag (`vt:tag:TAG`) after the entry's fetch began removes it; a soft one
    /// (`vt:stag:TAG`, or `vt:s:KEY` for a soft prefix purge) only marks it stale.
    private static let lookupScript = """
        local seq = tonumber(redis.call('GET', KEYS[3]) or '0')
        local function missing()
          if tonumber(ARGV[2]) == 0 then
            if redis.call('EXISTS', KEYS[4]) == 1 then return {false, seq, 0} end
            return {false, seq, 1}
          end
          if redis.call('SET', KEYS[4], ARGV[1], 'NX', 'PX', ARGV[2]) then return {false, seq, 1} end
          return {false, seq, 0}
        end
        local entry = redis.call('GET', KEYS[1])
        if not entry then return missing() end
        local meta = redis.call('GET', KEYS[2])
        if not meta then return missing() end
        local born = nil
        local soft = 0
        for line in string.gmatch(meta, '[^\\n]+') do
          if born == nil then
            born = tonumber(line)
            local marked = redis.call('GET', KEYS[5])
            if marked and tonumber(marked) > born then soft = 1 end
          else
            local purged = redis.call('GET', 'vt:tag:' .. line)
            if purged and tonumber(purged) > born then
              redis.call('DEL', KEYS[1], KEYS[2])
              return missing()
            end
            if soft == 0 then
              local softened = redis.call('GET', 'vt:stag:' .. line)
              if softened and tonumber(softened) > born then soft = 1 end
            end
          end
        end
        return {entry, seq, 1, soft}
        """

    private static let storeScript = """
        redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[3])
        redis.call('SET', KEYS[2], ARGV[2], 'PX', ARGV[3])
        redis.call('DEL', KEYS[3])
        return 1
        """

    private static let releaseScript = """
        if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
        return 0
        """

    /// The purge log (a capped stream), its generation, and how many entries it keeps.
    static let logKey = "vt:log"
    static let generationKey = "vt:gen"
    static let logLength = 100_000

    /// KEYS: sequence, log. ARGV: seconds to remember the purge, the key prefix of its marks
    /// (`vt:tag:` hard, `vt:stag:` soft), the fan-out message (a JSON object), the channel, the
    /// log's length, then the tags. Marks the tags, appends the message to the log and publishes
    /// it with its log id, in one step: a node that misses the message finds it in the log.
    private static let purgeScript = """
        local seq = redis.call('INCR', KEYS[1])
        for i = 6, #ARGV do redis.call('SET', ARGV[2] .. ARGV[i], seq, 'EX', ARGV[1]) end
        local id = redis.call('XADD', KEYS[2], 'MAXLEN', '~', ARGV[5], '*', 'm', ARGV[3])
        redis.call('PUBLISH', ARGV[4], string.sub(ARGV[3], 1, -2) .. ',"id":"' .. id .. '"}')
        return id
        """

    /// KEYS: generation. ARGV: a new generation, taken if there is none (Redis new, or restarted
    /// empty). Returns the generation.
    private static let generationScript = """
        redis.call('SET', KEYS[1], ARGV[1], 'NX')
        return redis.call('GET', KEYS[1])
        """

    /// A soft prefix purge, one scanned batch: each entry is marked stale (`vt:s:KEY`) for as
    /// long as it lives. KEYS: sequence, then the entry keys.
    private static let softMarkScript = """
        local seq = redis.call('INCR', KEYS[1])
        for i = 2, #KEYS do
          local ttl = redis.call('PTTL', KEYS[i])
          if ttl > 0 then redis.call('SET', 'vt:s:' .. string.sub(KEYS[i], 6), seq, 'PX', ttl) end
        end
        return seq
        """

    /// Runs a script by its hash (`EVALSHA`); loads it on first use, and after a Redis restart
    /// (`NOSCRIPT`) falls back to `EVAL` once.
    private func evaluate(_ script: String, _ arguments: [RESPArgument], on loop: any EventLoop) -> EventLoopFuture<RESPValue> {
        guard let hash = scriptHashes.withLock({ $0[script] }) else {
            client.send(["SCRIPT", "LOAD", .string(script)], on: loop).whenSuccess { reply in
                if let hash = reply.string { self.scriptHashes.withLock { $0[script] = hash } }
            }
            return client.send(["EVAL", .string(script)] + arguments, on: loop)
        }
        return client.send(["EVALSHA", .string(hash)] + arguments, on: loop).flatMapError { error in
            guard case RedisError.server(let message) = error, message.hasPrefix("NOSCRIPT") else {
                return loop.makeFailedFuture(error)
            }
            self.scriptHashes.withLock { _ = $0.removeValue(forKey: script) }
            return self.evaluate(script, arguments, on: loop)
        }
    }

    func lookup(_ key: CacheKey, lease: Duration?, on loop: any EventLoop) -> EventLoopFuture<SharedTierLookup?> {
        evaluate(
            Self.lookupScript,
            [
                "5", .string("vt:e:" + key.value), .string("vt:m:" + key.value), "vt:seq",
                .string("vt:l:" + key.value), .string("vt:s:" + key.value), .string(nodeID), .string(String(lease?.milliseconds ?? 0)),
            ],
            on: loop
        ).map { reply -> SharedTierLookup? in
            guard let parts = reply.array, parts.count == 3 || parts.count == 4, let sequence = parts[1].integer else { return nil }
            return SharedTierLookup(
                entry: parts[0].buffer.flatMap(L2EntryCodec.decode), sequence: sequence, mayFetch: parts[2].integer != 0,
                softPurged: parts.count == 4 && parts[3].integer == 1)
        }.recover { _ in nil }
    }

    func releaseLease(_ key: CacheKey, on loop: any EventLoop) {
        _ = evaluate(Self.releaseScript, ["1", .string("vt:l:" + key.value), .string(nodeID)], on: loop)
    }

    func store(_ key: CacheKey, entry: L2Entry, extraTags: [String], sequence: Int64, ttl: Duration, on loop: any EventLoop) {
        let lifetime = min(ttl, Self.maxLifetime).milliseconds
        guard lifetime > 0 else { return }
        let meta = ([String(sequence)] + entry.tags + extraTags).joined(separator: "\n")
        _ = evaluate(
            Self.storeScript,
            [
                "3", .string("vt:e:" + key.value), .string("vt:m:" + key.value), .string("vt:l:" + key.value),
                .bytes(L2EntryCodec.encode(entry)), .string(meta), .string(String(lifetime)),
            ], on: loop)
    }

    func purge(_ request: PurgeRequest, keys: [CacheKey], implicitTags: [String], on loop: any EventLoop) -> EventLoopFuture<Void> {
        var futures: [EventLoopFuture<RESPValue>] = []
        let tags = request.tags + implicitTags
        // A key purge is also its implicit tag's (below): soft, that marks the entry stale.
        for key in keys where !request.soft {
            futures.append(client.send(["DEL", .string("vt:e:" + key.value), .string("vt:m:" + key.value)], on: loop))
        }
        for prefix in request.prefixes { purgePrefix(prefix, soft: request.soft, cursor: "0", on: loop) }
        // The tags marked, the purge logged and told to every node (they apply it to their L1;
        // this node has already), in one script.
        let payload = (try? JSONEncoder().encode(FanoutMessage(node: nodeID, request: request))).map { ByteBuffer(bytes: $0) } ?? ByteBuffer()
        futures.append(
            evaluate(
                Self.purgeScript,
                [
                    "2", "vt:seq", .string(Self.logKey), .string(String(Self.maxLifetime.components.seconds)),
                    request.soft ? "vt:stag:" : "vt:tag:", .bytes(payload), .string(channel), .string(String(Self.logLength)),
                ] + tags.map { .string($0) },
                on: loop))
        // Fails when any part failed: a write's answer then says the fleet may not have it.
        return EventLoopFuture.whenAllSucceed(futures, on: loop).map { _ in }
    }

    // MARK: The purge log

    /// The log's generation, made now if Redis has none.
    func generation(on loop: any EventLoop) -> EventLoopFuture<String> {
        evaluate(Self.generationScript, ["1", .string(Self.generationKey), .string(UUID().uuidString)], on: loop).flatMapThrowing { reply in
            guard let generation = reply.string, !generation.isEmpty else { throw RedisError.server("no generation") }
            return generation
        }
    }

    /// The last id given to a log entry and the largest id trimmed from it (zero for a log that
    /// does not exist yet).
    func logBounds(on loop: any EventLoop) -> EventLoopFuture<(last: PurgeLog.EntryID, maxDeleted: PurgeLog.EntryID)> {
        client.send(["XINFO", "STREAM", .string(Self.logKey)], on: loop).map { reply -> (last: PurgeLog.EntryID, maxDeleted: PurgeLog.EntryID) in
            var last = PurgeLog.EntryID.zero
            var maxDeleted = PurgeLog.EntryID.zero
            let fields = reply.array ?? []
            var index = 0
            while index + 1 < fields.count {
                switch fields[index].string {
                case "last-generated-id": last = fields[index + 1].string.flatMap(PurgeLog.EntryID.init(parsing:)) ?? last
                case "max-deleted-entry-id": maxDeleted = fields[index + 1].string.flatMap(PurgeLog.EntryID.init(parsing:)) ?? maxDeleted
                default: break
                }
                index += 2
            }
            return (last, maxDeleted)
        }.flatMapError { error in
            // No log yet: nothing was ever purged through it.
            if case RedisError.server(let message) = error, message.contains("no such key") {
                return loop.makeSucceededFuture((PurgeLog.EntryID.zero, PurgeLog.EntryID.zero))
            }
            return loop.makeFailedFuture(error)
        }
    }

    /// Up to `count` log entries after `id`, oldest first.
    func logEntries(after id: PurgeLog.EntryID, count: Int, on loop: any EventLoop) -> EventLoopFuture<[(id: PurgeLog.EntryID, message: FanoutMessage)]> {
        client.send(["XRANGE", .string(Self.logKey), .string("(\(id)"), "+", "COUNT", .string(String(count))], on: loop).map { reply in
            (reply.array ?? []).compactMap { entry -> (id: PurgeLog.EntryID, message: FanoutMessage)? in
                guard let parts = entry.array, parts.count == 2, let id = parts[0].string.flatMap(PurgeLog.EntryID.init(parsing:)),
                    let fields = parts[1].array, fields.count >= 2, let payload = fields[1].buffer,
                    let message = try? JSONDecoder().decode(FanoutMessage.self, from: Data(payload.readableBytesView))
                else { return nil }
                return (id, message)
            }
        }
    }

    /// Prefix purges scan: they are operator tools, and cost what the keyspace holds. Hard, the
    /// entries are deleted; soft, each is marked stale.
    private func purgePrefix(_ prefix: String, soft: Bool, cursor: String, on loop: any EventLoop) {
        let pattern = "vt:e:" + prefix.replacingOccurrences(of: "*", with: "\\*").replacingOccurrences(of: "?", with: "\\?") + "*"
        client.send(["SCAN", .string(cursor), "MATCH", .string(pattern), "COUNT", "1000"], on: loop).whenSuccess { reply in
            guard let parts = reply.array, parts.count == 2, let next = parts[0].string, let keys = parts[1].array else { return }
            let names = keys.compactMap(\.string)
            if !names.isEmpty {
                if soft {
                    _ = self.evaluate(Self.softMarkScript, [.string(String(names.count + 1)), "vt:seq"] + names.map { .string($0) }, on: loop)
                } else {
                    _ = self.client.send(["DEL"] + names.flatMap { [RESPArgument.string($0), .string("vt:m:" + $0.dropFirst(5))] }, on: loop)
                }
            }
            if next != "0" { self.purgePrefix(prefix, soft: soft, cursor: next, on: loop) }
        }
    }
}

/// A purge as published to every node.
struct FanoutMessage: Codable {
    var node: String
    var tags: [String]
    var keys: [String]
    var prefixes: [String]
    var soft: Bool
    /// Optional: messages of nodes that predate it decode as false.
    var everything: Bool?
    /// The purge's id in the log (added by the purge script to what it publishes).
    var id: String?

    init(node: String, request: PurgeRequest) {
        self.node = node
        self.tags = request.tags
        self.keys = request.keys
        self.prefixes = request.prefixes
        self.soft = request.soft
        self.everything = request.everything ? true : nil
    }

    var request: PurgeRequest {
        PurgeRequest(tags: tags, keys: keys, prefixes: prefixes, soft: soft, everything: everything ?? false)
    }
}
