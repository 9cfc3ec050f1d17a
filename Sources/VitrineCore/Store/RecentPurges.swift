/// Key and prefix purges of the last few minutes, checked when a fetched response is stored:
/// a response whose fetch began before a purge of its key or of a prefix of it is not stored.
///
/// Tag purges need no entry here: an entry's tags are checked against the tag table on lookup.
struct RecentPurges: Sendable {
    private struct PrefixPurge: Sendable {
        let prefix: String
        let sequence: UInt64
        let at: UInt64
    }

    private var keys: [CacheKey: (sequence: UInt64, at: UInt64)] = [:]
    private var prefixes: [PrefixPurge] = []
    /// Key count at which old keys are next swept out (amortised: doubles with what survives).
    private var nextKeySweep = 1024
    /// How long a purge is remembered: at least as long as the longest fetch.
    let window: UInt64

    init(window: UInt64) {
        self.window = window
    }

    mutating func recordKey(_ key: CacheKey, sequence: UInt64, at now: UInt64) {
        prune(now: now)
        keys[key] = (sequence, now)
    }

    mutating func recordPrefix(_ prefix: String, sequence: UInt64, at now: UInt64) {
        prune(now: now)
        prefixes.append(PrefixPurge(prefix: prefix, sequence: sequence, at: now))
    }

    /// Whether `key` was purged after a fetch that began with `token`.
    func purged(_ key: CacheKey, since token: FetchToken) -> Bool {
        if let purge = keys[key], purge.sequence > token.sequence { return true }
        for purge in prefixes where purge.sequence > token.sequence && key.value.hasPrefix(purge.prefix) {
            return true
        }
        return false
    }

    private mutating func prune(now: UInt64) {
        guard now > window else { return }
        let horizon = now - window
        if let first = prefixes.first, first.at < horizon {
            prefixes.removeAll { $0.at < horizon }
        }
        if keys.count >= nextKeySweep {
            keys = keys.filter { $0.value.at >= horizon }
            nextKeySweep = Swift.max(1024, keys.count * 2)
        }
    }
}
