/// Taken when an origin fetch begins and handed back with the response to store.
///
/// The store compares it with every purge that happened since (by key, prefix or tag): an
/// entry whose fetch began before a purge that matches it is never served as fresh. This is the
/// lease idea from "Scaling Memcache at Facebook", which closes the stale-set race.
public struct FetchToken: Sendable, Hashable {
    /// The store's purge sequence when the fetch began.
    public let sequence: UInt64
    /// Monotonic nanoseconds when the fetch began.
    public let startedAt: UInt64
}
