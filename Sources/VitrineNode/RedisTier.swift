import Foundation
import Logging
import NIOCore
import Synchronization
import VitrineCore
import VitrineProxy
import VitrineRedis

/// The shared tier on Redis, one server or a cluster (the layout is `RedisTierKeys`'s).
///
/// Every entry's metadata holds the purge sequence its fetch began at, then its tags; a purge
/// takes the next sequence (`INCR`) and writes it to each tag's mark, only ever upwards. An entry
/// whose tag's mark is above its sequence was fetched before that purge: never served, whichever
/// node stored it. On a cluster a lookup reads the entry (one script in its slot), then its tags'
/// marks (one `MGET` per tag, in each tag's slot, all at once): two round trips, whatever the
/// cluster's size. A node remembers the tags' marks it has read while its purge fan-out is live
/// (`TagMarkCache`, kept current by the messages it hears): a lookup whose tags are all known is
/// one round trip. On a single server the script reads the marks itself: one round trip. A tag
/// purge costs one `INCR` and one mark per tag, whatever the number of entries.
final class RedisTier: SharedTier {
    /// The longest anything is kept in L2, and how long a tag's purge is remembered.
    static let maxLifetime: Duration = .seconds(86_400)

    let backend: RedisBackend
    let nodeID: String
    /// The pub/sub channel purges are fanned out on.
    let channel: String
    let keys: RedisTierKeys
    private let logger: Logger
    /// On a cluster, the tags' marks this node knows (see `TagMarkCache`): trusted only while the
    /// node's purge fan-out is live (`fanoutIsLive`, `fanoutWasLost`).
    private let tagMarks = Mutex(TagMarkCache(capacity: RedisTier.tagMarkCapacity))
    /// Tag marks read from the cluster (one `MGET` each), since the node started.
    private let tagMarkReads = Atomic<Int>(0)

    /// The most tags whose marks a node remembers (about 100 bytes each).
    static let tagMarkCapacity = 100_000

    init(backend: RedisBackend, nodeID: String, channel: String, keyPrefix: String = "vt", logger: Logger) {
        self.backend = backend
        self.channel = channel
        self.nodeID = nodeID
        self.keys = RedisTierKeys(prefix: keyPrefix, channel: channel)
        self.logger = logger
    }

    var state: String { backend.state }

    var shards: [SharedTierShard] {
        backend.shards.map { shard in
            SharedTierShard(
                primary: shard.primary.description, replicas: shard.replicas.map(\.description), slots: shard.slots, up: shard.up,
                failures: shard.failures, lastError: shard.lastError)
        }
    }

    /// KEYS (one slot): entry, meta, lease, the entry's soft mark, its primary key's hard and soft
    /// marks, purge-everything's hard and soft marks. ARGV: node id, lease milliseconds (0: take
    /// none, only tell whether another node holds it), and the sequence of an entry this node
    /// found purged ('' otherwise: that one is deleted, unless replaced meanwhile, and the key is
    /// a miss). Returns {entry or nil, meta or nil, 1 when this node may fetch, 1 when the entry
    /// was soft-purged after its fetch began}, having checked the marks in its slot; the node
    /// then checks the entry's other tags.
    ///
    /// On a single server, where a script may read any key, ARGV also holds the key prefix and
    /// the sequence's key: the script checks every tag itself and answers the sequence as a fifth
    /// element (one round trip).
    private static let lookupScript = LuaScript(
        """
        local single = #ARGV >= 5
        local function missing(mayFetch)
          if single then return {false, false, mayFetch, 0, tonumber(redis.call('GET', ARGV[5]) or '0')} end
          return {false, false, mayFetch, 0}
        end
        local function lease()
          if tonumber(ARGV[2]) == 0 then
            if redis.call('EXISTS', KEYS[3]) == 1 then return missing(0) end
            return missing(1)
          end
          if redis.call('SET', KEYS[3], ARGV[1], 'NX', 'PX', ARGV[2]) then return missing(1) end
          return missing(0)
        end
        local entry = redis.call('GET', KEYS[1])
        if not entry then return lease() end
        local meta = redis.call('GET', KEYS[2])
        if not meta then return lease() end
        local born = string.match(meta, '^[^\\n]*')
        if ARGV[3] ~= '' then
          if born == ARGV[3] then redis.call('DEL', KEYS[1], KEYS[2]) end
          return lease()
        end
        local bornAt = tonumber(born) or 0
        local function above(name)
          local mark = redis.call('GET', name)
          return mark and tonumber(mark) > bornAt
        end
        if above(KEYS[5]) or above(KEYS[7]) then
          redis.call('DEL', KEYS[1], KEYS[2])
          return lease()
        end
        local soft = 0
        if above(KEYS[4]) or above(KEYS[6]) or above(KEYS[8]) then soft = 1 end
        if not single then return {entry, meta, 1, soft} end
        local first = true
        for tag in string.gmatch(meta, '[^\\n]+') do
          if first then
            first = false
          elseif tag ~= '#all' and string.sub(tag, 1, 3) ~= '#k:' then
            if above(ARGV[4] .. ':{' .. tag .. '}:t') then
              redis.call('DEL', KEYS[1], KEYS[2])
              return lease()
            end
            if soft == 0 and above(ARGV[4] .. ':{' .. tag .. '}:st') then soft = 1 end
          end
        end
        return {entry, meta, 1, soft, tonumber(redis.call('GET', ARGV[5]) or '0')}
        """)

    /// KEYS: entry, meta, lease (one slot). ARGV: entry, meta, milliseconds to keep them.
    private static let storeScript = LuaScript(
        """
        redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[3])
        redis.call('SET', KEYS[2], ARGV[2], 'PX', ARGV[3])
        redis.call('DEL', KEYS[3])
        return 1
        """)

    private static let releaseScript = LuaScript(
        """
        if redis.call('GET', KEYS[1]) == ARGV[1] then return redis.call('DEL', KEYS[1]) end
        return 0
        """)

    /// Lua raising the marks from `KEYS[first]` to the last key to the number `seq`, remembered for
    /// `ARGV[seconds]`. Only ever upwards: of two purges of one tag racing, the later sequence stays.
    private static func raisingMarks(from first: String, seconds: Int) -> String {
        """
        for i = \(first), #KEYS do
          local current = tonumber(redis.call('GET', KEYS[i]) or '0')
          if seq > current then redis.call('SET', KEYS[i], seq, 'EX', ARGV[\(seconds)]) end
        end

        """
    }

    /// Lua appending the fan-out message (`ARGV[1]`, a JSON object) to the log `KEYS[log]`, kept
    /// to about `ARGV[3]` entries, and publishing it with its log id (`id`) on the channel
    /// `ARGV[2]` with the command `ARGV[4]` (`SPUBLISH` on a cluster), in one step: a node that
    /// misses the message finds it in the log.
    private static func loggingAndPublishing(log: Int) -> String {
        """
        local id = redis.call('XADD', KEYS[\(log)], 'MAXLEN', '~', ARGV[3], '*', 'm', ARGV[1])
        redis.call(ARGV[4], ARGV[2], string.sub(ARGV[1], 1, -2) .. ',"id":"' .. id .. '"}')

        """
    }

    /// KEYS: marks of one slot. ARGV: the purge's sequence, seconds to remember it.
    private static let markScript = LuaScript("local seq = tonumber(ARGV[1])\n" + raisingMarks(from: "1", seconds: 2) + "return 1")

    /// A whole purge on a single server, where a script may touch any key, in one round trip (a
    /// write's answer waits for it). KEYS: sequence, log, the entry keys to delete, then the marks.
    /// ARGV: the fan-out message, the channel, the log's length, the publish command, seconds to
    /// remember the marks, how many keys to delete. Returns the purge's sequence.
    private static let singleServerPurgeScript = LuaScript(
        """
        local seq = redis.call('INCR', KEYS[1])
        local deletes = tonumber(ARGV[6])
        for i = 3, 2 + deletes do redis.call('DEL', KEYS[i]) end

        """ + raisingMarks(from: "3 + deletes", seconds: 5) + loggingAndPublishing(log: 2) + "return seq")

    /// How many entries the purge log keeps.
    static let logLength = 100_000

    /// KEYS: the log (the channel's slot). ARGV: as `loggingAndPublishing` says. Run once the
    /// purge's marks are set, so a node told of it finds them.
    private static let publishScript = LuaScript(loggingAndPublishing(log: 1) + "return id")

    /// KEYS: generation. ARGV: a new generation, taken if there is none (Redis new, or restarted
    /// empty). Returns the generation.
    private static let generationScript = LuaScript(
        """
        redis.call('SET', KEYS[1], ARGV[1], 'NX')
        return redis.call('GET', KEYS[1])
        """)

    /// A soft prefix purge of one entry: marked stale for as long as it lives. KEYS: entry, soft
    /// mark (one slot). ARGV: the purge's sequence.
    private static let softMarkScript = LuaScript(
        """
        local ttl = redis.call('PTTL', KEYS[1])
        if ttl > 0 then redis.call('SET', KEYS[2], ARGV[1], 'PX', ttl) end
        return 1
        """)

    /// Runs a script by its hash (`EVALSHA`) on the node serving `keys`' slot; loads it on first
    /// use, and sends the text (`EVAL`, which that node then keeps) to a node that lacks it.
    private func evaluate(_ script: LuaScript, keys: [String], _ arguments: [RESPArgument], on loop: any EventLoop) -> EventLoopFuture<RESPValue> {
        let reply = loop.makePromise(of: RESPValue.self)
        evaluate(
            script, keys: keys.map { .string($0) }, slot: keys.first.map { RedisClusterSlot.slot(of: $0) } ?? 0, arguments, on: loop,
            then: reply.completeWith)
        return reply.futureResult
    }

    /// `evaluate`, with the keys as arguments already and the slot they share, handing the reply
    /// to `done` rather than to a future of its own: the lookup, on every L2 hit's path, waits on
    /// the command's future alone.
    private func evaluate(
        _ script: LuaScript, keys: [RESPArgument], slot: Int, _ arguments: [RESPArgument], on loop: any EventLoop,
        then done: @escaping @Sendable (Result<RESPValue, any Error>) -> Void
    ) {
        // One array, sized once: this is on every L2 lookup's path.
        @Sendable func command(_ name: RESPArgument, _ body: RESPArgument) -> [RESPArgument] {
            var command: [RESPArgument] = []
            command.reserveCapacity(3 + keys.count + arguments.count)
            command.append(name)
            command.append(body)
            command.append(.string(String(keys.count)))
            command.append(contentsOf: keys)
            command.append(contentsOf: arguments)
            return command
        }
        guard let hash = script.hash else {
            backend.send(["SCRIPT", "LOAD", .string(script.text)], slot: slot, on: loop).whenSuccess { reply in
                if let hash = reply.string { script.hash = hash }
            }
            backend.send(command("EVAL", .string(script.text)), slot: slot, on: loop).whenComplete(done)
            return
        }
        backend.send(command("EVALSHA", .string(hash)), slot: slot, on: loop) { result in
            guard case .failure(RedisError.server(let message)) = result, message.hasPrefix("NOSCRIPT") else {
                done(result)
                return
            }
            self.backend.send(command("EVAL", .string(script.text)), slot: slot, on: loop).whenComplete(done)
        }
    }

    func lookup(_ key: CacheKey, lease: Duration?, on loop: any EventLoop) -> EventLoopFuture<SharedTierLookup?> {
        let found = loop.makePromise(of: SharedTierLookup?.self)
        lookup(key, lease: lease, on: loop) { found.succeed($0) }
        return found.futureResult
    }

    func lookup(_ key: CacheKey, lease: Duration?, on loop: any EventLoop, then done: @escaping @Sendable (SharedTierLookup?) -> Void) {
        // No future between the reply and the request waiting for it: an L2 hit on a single
        // server is one reply, answered here.
        lookup(key, lease: lease, droppingBorn: nil, on: loop) { result in
            let found = try? result.get()
            if loop.inEventLoop { done(found) } else { loop.execute { done(found) } }
        }
    }

    /// Every step of a lookup hands its result on to `done`: on a single server the script's
    /// reply is the answer, with no future between it and the request waiting for it.
    private func lookup(
        _ key: CacheKey, lease: Duration?, droppingBorn: Int64?, on loop: any EventLoop,
        _ done: @escaping @Sendable (Result<SharedTierLookup, any Error>) -> Void
    ) {
        var arguments: [RESPArgument] = []
        arguments.reserveCapacity(5)
        arguments.append(.string(nodeID))
        arguments.append(.string(String(lease?.milliseconds ?? 0)))
        arguments.append(.string(droppingBorn.map(String.init) ?? ""))
        if !backend.isCluster {
            arguments.append(.string(keys.prefix))
            arguments.append(.string(keys.sequence))
        }
        let names = keys.lookupNames(key)
        evaluate(Self.lookupScript, keys: names.names.map { .bytes($0) }, slot: names.slot, arguments, on: loop) { result in
            switch result {
            case .failure(let error): done(.failure(error))
            case .success(let reply): self.interpretLookup(reply, key: key, lease: lease, droppingBorn: droppingBorn, on: loop, done)
            }
        }
    }

    /// What a lookup script's reply says: the answer, or (on a cluster) the further reads that give it.
    private func interpretLookup(
        _ reply: RESPValue, key: CacheKey, lease: Duration?, droppingBorn: Int64?, on loop: any EventLoop,
        _ done: @escaping @Sendable (Result<SharedTierLookup, any Error>) -> Void
    ) {
        guard let parts = reply.array, parts.count == 4 || parts.count == 5, let mayFetch = parts[2].integer else {
            done(.failure(RedisError.protocolError("an unexpected lookup reply")))
            return
        }
        let softPurged = parts[3].integer == 1
        if parts.count == 5, let sequence = parts[4].integer {
            // A single server: the script checked the tags, and read the sequence.
            let entry = parts[0].buffer.flatMap(L2EntryCodec.decode)
            done(.success(SharedTierLookup(entry: entry, sequence: sequence, mayFetch: mayFetch != 0, softPurged: entry != nil && softPurged)))
            return
        }
        clusterLookup(parts, mayFetch: mayFetch, softPurged: softPurged, key: key, lease: lease, droppingBorn: droppingBorn, on: loop, done)
    }

    /// On a cluster the script checked the marks in the entry's slot; the entry's other tags'
    /// marks are read here (and the sequence, when the answer needs it).
    private func clusterLookup(
        _ parts: [RESPValue], mayFetch: Int64, softPurged: Bool, key: CacheKey, lease: Duration?, droppingBorn: Int64?, on loop: any EventLoop,
        _ done: @escaping @Sendable (Result<SharedTierLookup, any Error>) -> Void
    ) {
        guard let bytes = parts[0].buffer, let meta = parts[1].buffer.map({ L2Meta(parsing: $0, skippingTagsReadWithEntry: true) }),
            let born = meta.born, droppingBorn == nil
        else {
            // Missing: the sequence a fetch begins at.
            sequence(on: loop).whenComplete { done($0.map { SharedTierLookup(entry: nil, sequence: $0, mayFetch: mayFetch != 0) }) }
            return
        }
        checkTags(meta.tags, born: born, on: loop) { verdict in
            switch verdict {
            case .failure(let error):
                done(.failure(error))
            case .success(.purged):
                // Fetched before a purge of one of its tags: removed, and a miss (with the lease).
                self.lookup(key, lease: lease, droppingBorn: born, on: loop, done)
            case .success(.valid(let softTag)):
                let entry = L2EntryCodec.decode(bytes)
                let softPurged = softTag || softPurged
                // A fresh entry is served as it is; one that will be refetched (stale,
                // soft-purged) needs the sequence its refresh begins at.
                if let entry, !softPurged, entry.isFresh(now: Int(Date().timeIntervalSince1970)) {
                    done(.success(SharedTierLookup(entry: entry, sequence: born, softPurged: false)))
                    return
                }
                self.sequence(on: loop).whenComplete { done($0.map { SharedTierLookup(entry: entry, sequence: $0, softPurged: softPurged) }) }
            }
        }
    }

    /// The purge sequence now: what a fetch beginning now is stored with.
    private func sequence(on loop: any EventLoop) -> EventLoopFuture<Int64> {
        backend.send(["GET", .string(keys.sequence)], key: keys.sequence, on: loop).map { reply in
            reply.string.flatMap { Int64($0) } ?? 0
        }
    }

    private enum TagVerdict {
        case purged
        case valid(softPurged: Bool)
    }

    /// Checks every tag's marks against the entry's sequence: those this node knows at once, the
    /// others read from each tag's slot (all at once, and remembered when they may be); hands the
    /// verdict to `done` once every tag's are in.
    private func checkTags(
        _ tags: [String], born: Int64, on loop: any EventLoop, _ done: @escaping @Sendable (Result<TagVerdict, any Error>) -> Void
    ) {
        var unknown: [String] = []
        var purged = false
        var softPurged = false
        let ticket = tagMarks.withLock { cache -> TagMarkCache.Ticket in
            for tag in tags {
                guard let marks = cache.marks(of: tag) else {
                    if !unknown.contains(tag) { unknown.append(tag) }
                    continue
                }
                if marks.hard > born { purged = true }
                if marks.soft > born { softPurged = true }
            }
            return cache.ticket
        }
        if purged {
            done(.success(.purged))
            return
        }
        guard !unknown.isEmpty else {
            done(.success(.valid(softPurged: softPurged)))
            return
        }
        // Tallied by hand, on `loop`: no combination of futures per lookup.
        let tally = TagTally(waiting: unknown.count, softPurged: softPurged)
        tagMarkReads.add(unknown.count, ordering: .relaxed)
        for tag in unknown {
            let names = keys.tagMarks(tag)
            backend.send(["MGET", .string(names.hard), .string(names.soft)], key: names.hard, on: loop).hop(to: loop).whenComplete { result in
                if case .success(let reply) = result, let marks = TagTally.marks(in: reply) {
                    _ = self.tagMarks.withLock { $0.learn(tag, marks, readWith: ticket) }
                }
                if let verdict = tally.record(result, born: born) { done(verdict) }
            }
        }
    }

    /// A purge of `tags` was made or heard of (on a cluster): their marks are read again.
    func forgetMarks(of tags: [String]) {
        guard backend.isCluster, !tags.isEmpty else { return }
        tagMarks.withLock { $0.forget(tags) }
    }

    /// The purge fan-out is subscribed (again): the tags' marks read from now on stay current.
    func fanoutIsLive() {
        tagMarks.withLock { $0.trust() }
    }

    /// The purge fan-out was lost: purges may go unheard, so no mark is remembered until it is
    /// live again.
    func fanoutWasLost() {
        tagMarks.withLock { $0.distrust() }
    }

    /// What this node knows of the tags' marks (a cluster's), for `/stats`.
    var tagMarkStatus: SharedTierTagMarks? {
        guard backend.isCluster else { return nil }
        let (known, trusted) = tagMarks.withLock { ($0.count, $0.isTrusted) }
        return SharedTierTagMarks(known: known, reads: tagMarkReads.load(ordering: .relaxed), trusted: trusted)
    }

    /// The marks read for one lookup's tags, as they come back (on the lookup's event loop).
    private final class TagTally: @unchecked Sendable {
        private var waiting: Int
        private var purged = false
        private var softPurged: Bool
        private var failure: (any Error)?

        init(waiting: Int, softPurged: Bool) {
            self.waiting = waiting
            self.softPurged = softPurged
        }

        /// A tag's marks as `MGET` answers them (nil for an answer that is not two marks).
        static func marks(in reply: RESPValue) -> TagMarkCache.Marks? {
            guard let marks = reply.array, marks.count == 2 else { return nil }
            func mark(_ value: RESPValue) -> Int64? {
                if case .null = value { return 0 }
                return value.string.flatMap { Int64($0) }
            }
            guard let hard = mark(marks[0]), let soft = mark(marks[1]) else { return nil }
            return TagMarkCache.Marks(hard: hard, soft: soft)
        }

        /// Records one tag's marks; the verdict once every tag's are in.
        func record(_ result: Result<RESPValue, any Error>, born: Int64) -> Result<TagVerdict, any Error>? {
            switch result {
            case .success(let reply):
                if let marks = Self.marks(in: reply) {
                    if marks.hard > born { purged = true }
                    if marks.soft > born { softPurged = true }
                } else {
                    purged = true
                }
            case .failure(let error):
                failure = error
            }
            waiting -= 1
            guard waiting == 0 else { return nil }
            if let failure { return .failure(failure) }
            return .success(purged ? .purged : .valid(softPurged: softPurged))
        }
    }

    func releaseLease(_ key: CacheKey, on loop: any EventLoop) {
        _ = evaluate(Self.releaseScript, keys: [keys.entry(key).lease], [.string(nodeID)], on: loop)
    }

    func store(_ key: CacheKey, entry: L2Entry, extraTags: [String], sequence: Int64, ttl: Duration, on loop: any EventLoop) {
        let lifetime = min(ttl, Self.maxLifetime).milliseconds
        guard lifetime > 0 else { return }
        let meta = ([String(sequence)] + entry.tags + extraTags).joined(separator: "\n")
        let names = keys.entry(key)
        _ = evaluate(
            Self.storeScript, keys: [names.entry, names.meta, names.lease],
            [.bytes(L2EntryCodec.encode(entry)), .string(meta), .string(String(lifetime))], on: loop)
    }

    /// On a cluster: the sequence first; then the entries deleted and the marks set, all at once;
    /// then the purge logged and published: a node that hears of it finds every mark in place. On
    /// a single server all of that in one script.
    func purge(_ request: PurgeRequest, keys purgedKeys: [CacheKey], implicitTags: [String], on loop: any EventLoop) -> EventLoopFuture<Void> {
        let tags = request.tags + implicitTags
        let marks = tags.flatMap { self.keys.marksToSet($0, soft: request.soft) }
        // A key purge is also its implicit tag's (above): soft, that marks the entry stale.
        let deleted = request.soft ? [] : purgedKeys.map { self.keys.entry($0) }
        let remembered = String(Self.maxLifetime.components.seconds)
        guard backend.isCluster else {
            return evaluate(
                Self.singleServerPurgeScript, keys: [keys.sequence, keys.log] + deleted.flatMap { [$0.entry, $0.meta] } + marks,
                [
                    .bytes(fanoutPayload(request)), .string(channel), .string(String(Self.logLength)), .string(backend.publishCommand),
                    .string(remembered), .string(String(deleted.count * 2)),
                ], on: loop
            ).map { reply in
                if let sequence = reply.integer {
                    for prefix in request.prefixes { self.purgePrefix(prefix, soft: request.soft, sequence: sequence, on: loop) }
                }
            }
        }
        return backend.send(["INCR", .string(keys.sequence)], key: keys.sequence, on: loop).flatMap { reply -> EventLoopFuture<Void> in
            guard let sequence = reply.integer else { return loop.makeFailedFuture(RedisError.protocolError("INCR answered \(reply)")) }
            let steps = deleted.map { names in
                self.backend.send(["DEL", .string(names.entry), .string(names.meta)], key: names.entry, on: loop)
            }
            for prefix in request.prefixes { self.purgePrefix(prefix, soft: request.soft, sequence: sequence, on: loop) }
            let marked = self.setMarks(marks[...], sequence: sequence, remembered: remembered, on: loop)
            // Once the marks are set, this node reads them again (as other nodes will when they
            // hear the purge): a read answered before they were set is not remembered past this.
            marked.whenComplete { _ in self.forgetMarks(of: request.tags) }
            return EventLoopFuture.whenAllSucceed(steps, on: loop).and(marked).flatMap { _ in self.publish(request, on: loop) }
        }
    }

    /// Sets each mark in its own slot, 256 at a time: purge-everything's 16,384 neither flood
    /// the connections nor hold the event loop for long.
    private func setMarks(_ marks: ArraySlice<String>, sequence: Int64, remembered: String, on loop: any EventLoop) -> EventLoopFuture<Void> {
        guard !marks.isEmpty else { return loop.makeSucceededVoidFuture() }
        let batch = marks.prefix(256).map { mark in
            evaluate(Self.markScript, keys: [mark], [.string(String(sequence)), .string(remembered)], on: loop)
        }
        return EventLoopFuture.andAllSucceed(batch, on: loop).flatMap {
            self.setMarks(marks.dropFirst(256), sequence: sequence, remembered: remembered, on: loop)
        }
    }

    private func fanoutPayload(_ request: PurgeRequest) -> ByteBuffer {
        (try? JSONEncoder().encode(FanoutMessage(node: nodeID, request: request))).map { ByteBuffer(bytes: $0) } ?? ByteBuffer()
    }

    /// Logs the purge and tells every node (they apply it to their L1; this node has already).
    private func publish(_ request: PurgeRequest, on loop: any EventLoop) -> EventLoopFuture<Void> {
        evaluate(
            Self.publishScript, keys: [keys.log],
            [.bytes(fanoutPayload(request)), .string(channel), .string(String(Self.logLength)), .string(backend.publishCommand)], on: loop
        ).map { _ in }
    }

    // MARK: The purge log

    /// The log's generation, made now if Redis has none.
    func generation(on loop: any EventLoop) -> EventLoopFuture<String> {
        evaluate(Self.generationScript, keys: [keys.generation], [.string(UUID().uuidString)], on: loop).flatMapThrowing { reply in
            guard let generation = reply.string, !generation.isEmpty else { throw RedisError.server("no generation") }
            return generation
        }
    }

    /// The last id given to a log entry and the largest id trimmed from it (zero for a log that
    /// does not exist yet).
    func logBounds(on loop: any EventLoop) -> EventLoopFuture<(last: PurgeLog.EntryID, maxDeleted: PurgeLog.EntryID)> {
        backend.send(["XINFO", "STREAM", .string(keys.log)], key: keys.log, on: loop).map { reply -> (last: PurgeLog.EntryID, maxDeleted: PurgeLog.EntryID) in
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
        backend.send(["XRANGE", .string(keys.log), .string("(\(id)"), "+", "COUNT", .string(String(count))], key: keys.log, on: loop).map { reply in
            (reply.array ?? []).compactMap { entry -> (id: PurgeLog.EntryID, message: FanoutMessage)? in
                guard let parts = entry.array, parts.count == 2, let id = parts[0].string.flatMap(PurgeLog.EntryID.init(parsing:)),
                    let fields = parts[1].array, fields.count >= 2, let payload = fields[1].buffer,
                    let message = try? JSONDecoder().decode(FanoutMessage.self, from: Data(payload.readableBytesView))
                else { return nil }
                return (id, message)
            }
        }
    }

    /// Prefix purges scan every primary: they are operator tools, and cost what the keyspace
    /// holds. Hard, the entries are deleted; soft, each is marked stale.
    private func purgePrefix(_ prefix: String, soft: Bool, sequence: Int64, on loop: any EventLoop) {
        let keys = self.keys
        backend.scan(matching: keys.entryPattern(keyPrefix: prefix), on: loop) { names in
            for name in names {
                if soft {
                    guard let mark = RedisTierKeys.sibling(ofEntry: name, ":s") else { continue }
                    _ = self.evaluate(Self.softMarkScript, keys: [name, mark], [.string(String(sequence))], on: loop)
                } else {
                    guard let meta = RedisTierKeys.sibling(ofEntry: name, ":m") else { continue }
                    _ = self.backend.send(["DEL", .string(name), .string(meta)], key: name, on: loop)
                }
            }
        }
    }
}

/// An entry's metadata as the tier keeps it: the sequence its fetch began at, then its tags, a
/// line each. Read from Redis, so parsed without trusting it: a sequence that is not digits (or
/// does not fit) is nil.
struct L2Meta {
    var born: Int64?
    var tags: [String]

    init(parsing text: String) {
        self.init(parsing: ByteBuffer(string: text))
    }

    /// Read from the bytes as they came (on every cluster L2 hit), split on the newline byte (a
    /// newline is ASCII, so every piece is whole text); `skippingTagsReadWithEntry` leaves out
    /// the tags whose marks the lookup script read (purge-everything, key tags).
    init(parsing bytes: ByteBuffer, skippingTagsReadWithEntry: Bool = false) {
        var born: Int64?
        var tags: [String] = []
        bytes.withUnsafeReadableBytes { raw in
            var lines = raw.split(separator: UInt8(ascii: "\n"), omittingEmptySubsequences: true)[...]
            if let first = lines.popFirst() { born = Self.sequence(first) }
            tags.reserveCapacity(lines.count)
            for line in lines {
                if skippingTagsReadWithEntry, RedisTierKeys.isReadWithEntry(line) { continue }
                tags.append(String(decoding: line, as: UTF8.self))
            }
        }
        self.born = born
        self.tags = tags
    }

    private static func sequence(_ digits: Slice<UnsafeRawBufferPointer>) -> Int64? {
        guard !digits.isEmpty else { return nil }
        var value: Int64 = 0
        for byte in digits {
            guard (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(byte) else { return nil }
            let (times, overflow) = value.multipliedReportingOverflow(by: 10)
            let (sum, overflowed) = times.addingReportingOverflow(Int64(byte - UInt8(ascii: "0")))
            guard !overflow, !overflowed else { return nil }
            value = sum
        }
        return value
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
