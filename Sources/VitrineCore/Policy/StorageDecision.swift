/// Whether a response may be stored by a shared cache, and for how long.
public enum StorageDecision: Sendable, Equatable {
    /// Store it: fresh for `ttl`, kept `grace` longer for stale serving.
    case store(ttl: Duration, grace: Duration)
    /// Do not store it; `reason` is for logs and `Cache-Status`'s `detail`.
    case doNotStore(reason: String)

    public var isStorable: Bool {
        if case .store = self { return true }
        return false
    }
}
