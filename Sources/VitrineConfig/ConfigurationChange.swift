/// What a reloaded configuration changes, sorted into what a running node takes at once
/// (origins, routes with their TTLs, key and cookie rules, listings, TLS certificates) and what
/// only a restart can change (listeners, the memory budget, limits, timeouts, Redis, Postgres, server settings).
public struct ConfigurationChange: Sendable, Equatable {
    /// Top-level sections that changed and are applied live.
    public let applied: [String]
    /// Top-level sections that changed but keep their running values until a restart.
    public let needsRestart: [String]

    public init(from old: VitrineConfiguration, to new: VitrineConfiguration) {
        var applied: [String] = []
        if old.origins != new.origins { applied.append("origins") }
        if old.routes != new.routes { applied.append("routes") }
        if old.listings != new.listings { applied.append("listings") }
        // Certificates (and their TLS settings) are swapped live; the listener itself is not.
        let tlsListenerChanged = old.tls?.listen != new.tls?.listen
        if !tlsListenerChanged && old.tls != new.tls { applied.append("tls") }
        self.applied = applied
        var restart: [String] = []
        if old.listen != new.listen { restart.append("listen") }
        if old.admin != new.admin { restart.append("admin") }
        if old.probes != new.probes { restart.append("probes") }
        if tlsListenerChanged { restart.append("tls") }
        if old.cache != new.cache { restart.append("cache") }
        if old.limits != new.limits { restart.append("limits") }
        if old.timeouts != new.timeouts { restart.append("timeouts") }
        if old.server != new.server { restart.append("server") }
        if old.redis != new.redis { restart.append("redis") }
        if old.postgres != new.postgres { restart.append("postgres") }
        if old.stateDirectory != new.stateDirectory { restart.append("state_dir") }
        self.needsRestart = restart
    }

    /// The running configuration after the reload: `new`'s live sections on `old`'s others.
    public static func merged(running old: VitrineConfiguration, loaded new: VitrineConfiguration) -> VitrineConfiguration {
        var merged = old
        merged.origins = new.origins
        merged.routes = new.routes
        merged.listings = new.listings
        if old.tls?.listen == new.tls?.listen { merged.tls = new.tls }
        return merged
    }
}
