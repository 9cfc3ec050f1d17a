import Logging
import NIOCore
import NIOSSL
import Synchronization

/// A subscription that survives Redis going away: it resubscribes with backoff, and tells its
/// owner when it is first live (`onSubscribed`), when it is lost (`onLost`: messages may be
/// missed from then on) and when it is live again (`onResubscribed`).
///
/// On a cluster it subscribes with `SSUBSCRIBE` (sharded pub/sub) on the primary serving the
/// channel's slot, found anew from the map at each attempt: after a failover or a migration the
/// server ends the subscription, and it is made again where the slot is now.
public final class RedisSubscriber: Sendable {
    private let url: RedisURL
    private let tls: NIOSSLContext?
    private let cluster: RedisClusterClient?
    private let channels: [String]
    private let eventLoop: any EventLoop
    private let logger: Logger
    private let onMessage: @Sendable (_ channel: String, _ payload: ByteBuffer) -> Void
    private let onResubscribed: @Sendable () -> Void
    private let onSubscribed: @Sendable () -> Void
    private let onLost: @Sendable () -> Void
    private let task = Mutex<Task<Void, Never>?>(nil)
    private let current = Mutex<RedisSubscription?>(nil)
    private let subscribed = Atomic<Bool>(false)

    public init(
        url: RedisURL, channels: [String], eventLoop: any EventLoop, logger: Logger = Logger(label: "vitrine.redis"),
        tls: NIOSSLContext? = nil, cluster: RedisClusterClient? = nil, onMessage: @escaping @Sendable (_ channel: String, _ payload: ByteBuffer) -> Void,
        onResubscribed: @escaping @Sendable () -> Void = {},
        onSubscribed: @escaping @Sendable () -> Void = {},
        onLost: @escaping @Sendable () -> Void = {}
    ) {
        self.onSubscribed = onSubscribed
        self.onLost = onLost
        self.url = url
        self.tls = tls
        self.cluster = cluster
        self.channels = channels
        self.eventLoop = eventLoop
        self.logger = logger
        self.onMessage = onMessage
        self.onResubscribed = onResubscribed
    }

    /// Whether the subscription is live now.
    public var isSubscribed: Bool { subscribed.load(ordering: .relaxed) }

    public func start() {
        task.withLock { task in
            guard task == nil else { return }
            task = Task { await self.run() }
        }
    }

    public func shutdown() async {
        task.withLock { $0?.cancel() }
        let subscription = current.withLock { current in
            defer { current = nil }
            return current
        }
        await subscription?.close()
    }

    /// The single Redis, or the cluster's primary for the channels' slot as the map says now.
    private func subscriptionURL() async throws -> (url: RedisURL, primary: RedisClusterTopology.Endpoint?) {
        guard let cluster, let channel = channels.first else { return (url, nil) }
        let topology = try await cluster.refresh(on: eventLoop).get()
        guard let primary = topology.shard(forSlot: RedisClusterSlot.slot(of: channel))?.primary else {
            throw RedisError.server("CLUSTERDOWN no node serves the slot of \(channel)")
        }
        return (cluster.url(of: primary), primary)
    }

    /// On a cluster, the subscription is closed (and made again where it belongs) as soon as the
    /// map says another primary serves the channel's slot: a server is not relied on to end a
    /// subscription whose slot moved away from it.
    private func watchOwnership(of subscription: RedisSubscription, subscribedAt primary: RedisClusterTopology.Endpoint) {
        guard let cluster, let channel = channels.first else { return }
        let slot = RedisClusterSlot.slot(of: channel)
        let channelLogger = logger
        let task = subscription.channel.eventLoop.scheduleRepeatedTask(initialDelay: .seconds(1), delay: .seconds(1)) { task in
            guard let owner = cluster.topology?.shard(forSlot: slot)?.primary, owner != primary else { return }
            channelLogger.notice(
                "the purge channel's slot moved: subscribing where it is now", metadata: ["from": "\(primary)", "to": "\(owner)"])
            task.cancel()
            subscription.channel.close(promise: nil)
        }
        subscription.closeFuture.whenComplete { _ in task.cancel() }
    }

    private func run() async {
        var failures = 0
        var everSubscribed = false
        while !Task.isCancelled {
            do {
                let (url, primary) = try await subscriptionURL()
                let subscription = try await RedisSubscription.subscribe(
                    to: channels, url: url, on: eventLoop, tls: tls, sharded: cluster != nil, onMessage: onMessage)
                if let primary { watchOwnership(of: subscription, subscribedAt: primary) }
                current.withLock { $0 = subscription }
                subscribed.store(true, ordering: .relaxed)
                if everSubscribed {
                    logger.info("redis subscription restored", metadata: ["channels": "\(channels)"])
                    onResubscribed()
                } else {
                    onSubscribed()
                }
                everSubscribed = true
                failures = 0
                try? await subscription.closeFuture.get()
                subscribed.store(false, ordering: .relaxed)
                onLost()
                if Task.isCancelled { return }
                logger.warning("redis subscription lost; resubscribing", metadata: ["channels": "\(channels)"])
            } catch {
                failures += 1
                // Once per outage at warning level; the retries after it only at debug.
                logger.log(
                    level: failures == 1 ? .warning : .debug, "redis subscription failed; retrying",
                    metadata: ["channels": "\(channels)", "error": "\(error)", "attempt": "\(failures)"])
            }
            let backoff = min(2_000, 50 << min(failures, 6))
            try? await Task.sleep(for: .milliseconds(backoff))
        }
    }
}
