/// What a cluster client does with a command's outcome: the decisions, as a plain value, that
/// `RedisClusterClient` carries out.
public enum RedisClusterRouting: Sendable, Equatable {
    /// The reply is the command's answer (an error reply that is not a redirect included).
    case done
    /// Send it again to `endpoint`: after `MOVED` (and the map is refreshed), or with `ASKING`
    /// first after `ASK` (the map stays: the slot is being migrated).
    case retry(RedisClusterTopology.Endpoint, asking: Bool, refreshMap: Bool)
    /// Send it again to the same node after a short pause: `TRYAGAIN`, a multi-key command
    /// whose keys are split between the two ends of a slot's migration for a moment.
    case retryLater(RedisClusterTopology.Endpoint)
    /// Give up: too many redirects (a map that keeps changing, or a loop).
    case giveUp

    /// The most redirects one command follows (Redis's own clients use 5 or so).
    public static let maxRedirects = 5

    /// - Parameters:
    ///   - errorReply: the error reply's text, when the reply was an error.
    ///   - answeredBy: the node that answered (an empty host in a redirect means it).
    ///   - redirects: redirects this command has followed already.
    public static func decide(errorReply: String?, answeredBy: RedisClusterTopology.Endpoint, redirects: Int) -> RedisClusterRouting {
        guard let errorReply else { return .done }
        if errorReply.hasPrefix("TRYAGAIN") { return redirects < maxRedirects ? .retryLater(answeredBy) : .giveUp }
        guard let redirect = RedisClusterRedirect(error: errorReply) else { return .done }
        guard redirects < maxRedirects else { return .giveUp }
        let host = redirect.host.isEmpty || redirect.host == "?" ? answeredBy.host : redirect.host
        let target = RedisClusterTopology.Endpoint(host: host, port: redirect.port)
        switch redirect.kind {
        case .moved: return .retry(target, asking: false, refreshMap: true)
        case .ask: return .retry(target, asking: true, refreshMap: false)
        }
    }
}
