import NIOCore
import VitrineCore

/// What an L2 lookup found: the entry if there is a valid one, and the tier's purge sequence at
/// the time of the lookup, to hand back when the fetched response is stored (so that a purge
/// landing between the two makes the stored entry invalid: race-free across nodes).
package struct SharedTierLookup {
    var entry: L2Entry?
    var sequence: Int64
    /// False when the entry is missing and another node holds the lease to fetch it: wait for L2
    /// to fill instead of going to the origin too.
    var mayFetch = true
    /// The entry was soft-purged after it was fetched: serve it stale (within its grace) while
    /// one refresh runs.
    var softPurged = false

    package init(entry: L2Entry?, sequence: Int64, mayFetch: Bool = true, softPurged: Bool = false) {
        self.entry = entry
        self.sequence = sequence
        self.mayFetch = mayFetch
        self.softPurged = softPurged
    }
}

/// The second tier, shared by every node: Redis in production. Every call is best effort: when
/// the tier is down or slow, lookups answer "nothing" quickly and the proxy carries on with L1
/// and the origin.
package protocol SharedTier: Sendable {
    /// "up", "down" (configured, unreachable), "degraded" (a cluster with shards down) or "off".
    var state: String { get }
    /// A cluster's shards (empty otherwise).
    var shards: [SharedTierShard] { get }
    /// What the node knows of the tags' purge marks, on a tier that keeps them apart from the
    /// entries (a cluster); nil otherwise.
    var tagMarkStatus: SharedTierTagMarks? { get }
    /// Looks `key` up; when it is missing and `lease` is given, takes the key's fetch lease for
    /// that long (fleet-wide collapsing).
    func lookup(_ key: CacheKey, lease: Duration?, on loop: any EventLoop) -> EventLoopFuture<SharedTierLookup?>
    /// `lookup`, handing the answer (nil when the tier failed) to `done` on `loop` rather than
    /// through a future: every L2 hit waits on it.
    func lookup(_ key: CacheKey, lease: Duration?, on loop: any EventLoop, then done: @escaping @Sendable (SharedTierLookup?) -> Void)
    /// Gives the lease back early (the fetch ended without storing).
    func releaseLease(_ key: CacheKey, on loop: any EventLoop)
    /// Stores in the background; `extraTags` are the implicit tags (the primary key's).
    func store(_ key: CacheKey, entry: L2Entry, extraTags: [String], sequence: Int64, ttl: Duration, on loop: any EventLoop)
    /// Purges in the tier and tells every other node (fan-out). Returns when the tier has it.
    func purge(_ request: PurgeRequest, keys: [CacheKey], implicitTags: [String], on loop: any EventLoop) -> EventLoopFuture<Void>
}

/// One shard of a clustered tier as the node sees it (`/stats`, `/metrics`).
package struct SharedTierShard: Sendable, Equatable {
    package var primary: String
    package var replicas: [String]
    /// How many hash slots it serves.
    package var slots: Int
    /// False while commands to its primary fail without an answer.
    package var up: Bool
    /// Commands to its primary that failed without an answer, since the node started.
    package var failures: Int
    package var lastError: String?

    package init(primary: String, replicas: [String], slots: Int, up: Bool, failures: Int, lastError: String?) {
        self.primary = primary
        self.replicas = replicas
        self.slots = slots
        self.up = up
        self.failures = failures
        self.lastError = lastError
    }
}

/// The tags' purge marks a node remembers (`/stats`): how many, how many were read from the
/// tier, and whether they are trusted (the purge fan-out is live).
package struct SharedTierTagMarks: Sendable, Equatable {
    package var known: Int
    package var reads: Int
    package var trusted: Bool

    package init(known: Int, reads: Int, trusted: Bool) {
        self.known = known
        self.reads = reads
        self.trusted = trusted
    }
}

extension SharedTier {
    /// A tier that is not clustered has no shards to show.
    package var shards: [SharedTierShard] { [] }
    /// Nor marks kept apart from its entries.
    package var tagMarkStatus: SharedTierTagMarks? { nil }

    /// Through the future, for a tier with no faster way.
    package func lookup(
        _ key: CacheKey, lease: Duration?, on loop: any EventLoop, then done: @escaping @Sendable (SharedTierLookup?) -> Void
    ) {
        lookup(key, lease: lease, on: loop).hop(to: loop).whenComplete { done((try? $0.get()) ?? nil) }
    }
}

/// The implicit tag every entry stored in the tier under `primary` (and its variants) carries, so
/// that a key purge there is a tag purge: O(1) and race-free like any other.
package func sharedTierKeyTag(_ primary: CacheKey) -> String { sharedTierKeyTagPrefix + VaryKey.primaryPart(of: primary) }

/// What every key tag (`sharedTierKeyTag`) begins with.
package let sharedTierKeyTagPrefix = "#k:"

/// The primary key of an entry's key (its own, for a primary key): a tier may keep a primary
/// key's variants together by it.
package func sharedTierPrimary(of key: CacheKey) -> Substring { VaryKey.primaryPart(of: key) }

/// The tag every L2 entry carries: purging it purges everything, in constant time, with the
/// same race-free sequence check as any tag.
package let sharedTierEverythingTag = "#all"
