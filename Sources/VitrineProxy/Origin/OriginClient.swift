import NIOCore
import VitrineConfig

/// The pools for every origin on every event loop. A client connection takes its origin
/// connection from the pool of its own loop, so an exchange never crosses threads.
package final class OriginClient: @unchecked Sendable {
    // Safe: built once in `init`, then only read; each pool is used on its own loop only.
    private let pools: [ObjectIdentifier: [OriginPool]]

    package init(group: any EventLoopGroup, router: Router, configuration: VitrineConfiguration) {
        var pools: [ObjectIdentifier: [OriginPool]] = [:]
        for loop in group.makeIterator() {
            pools[ObjectIdentifier(loop)] = router.origins.map { name in
                OriginPool(
                    name: name,
                    settings: configuration.origins[name]!,
                    eventLoop: loop,
                    maxHeaderBytes: configuration.limits.maxOriginHeaderBytes
                )
            }
        }
        self.pools = pools
    }

    /// The pool of origin `index` (as in `Router.origins`) for `loop`.
    func pool(_ index: Int, on loop: any EventLoop) -> OriginPool {
        pools[ObjectIdentifier(loop)]![index]
    }

    /// Closes idle connections on every loop.
    package func shutdown() {
        for (_, loopPools) in pools {
            guard let loop = loopPools.first?.eventLoop else { continue }
            let pools = UnsafeTransfer(loopPools)
            loop.execute { for pool in pools.value { pool.closeIdle() } }
        }
    }
}

/// Carries a non-Sendable value to the event loop that owns it.
struct UnsafeTransfer<Value>: @unchecked Sendable {
    let value: Value
    init(_ value: Value) { self.value = value }
}
