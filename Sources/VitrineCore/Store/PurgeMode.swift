/// How a purge treats what it matches.
public enum PurgeMode: String, Sendable, Codable {
    /// Gone at once: the next request is a miss.
    case hard
    /// Marked stale: still usable where stale serving is allowed, while it is refreshed.
    case soft
}
