import NIOCore
import VitrineConfig

/// One origin's connection pools, one per event loop. A client connection takes its origin
/// connection from the pool of its own loop, so an exchange never crosses threads. A reload that
/// leaves an origin's settings as they were keeps its pools (and their warm connections).
package final class OriginPools: @unchecked Sendable {
    // Safe: built once in `init`, then only read; each pool is used on its own loop only.
    private let pools: [ObjectIdentifier: OriginPool]
    let name: String
    let settings: OriginSettings
    let maxHeaderBytes: Int

    init(name: String, settings: OriginSettings, maxHeaderBytes: Int, group: any EventLoopGroup) {
        self.name = name
        self.settings = settings
        self.maxHeaderBytes = maxHeaderBytes
        var pools: [ObjectIdentifier: OriginPool] = [:]
        for loop in group.makeIterator() {
            pools[ObjectIdentifier(loop)] = OriginPool(name: name, settings: settings, eventLoop: loop, maxHeaderBytes: maxHeaderBytes)
        }
        self.pools = pools
    }

    /// The pool for `loop`, which must be one of the group's (the only loops that run connections).
    func pool(on loop: any EventLoop) -> OriginPool {
        guard let pool = pools[ObjectIdentifier(loop)] else {
            preconditionFailure("an event loop outside the node's group")
        }
        return pool
    }

    /// Closes idle connections on every loop (at shutdown, and when a reload dropped the origin).
    package func closeIdle() {
        for (_, pool) in pools {
            let transfer = UnsafeTransfer(pool)
            pool.eventLoop.execute { transfer.value.closeIdle() }
        }
    }
}

/// Carries a non-Sendable value to the event loop that owns it.
struct UnsafeTransfer<Value>: @unchecked Sendable {
    let value: Value
    init(_ value: Value) { self.value = value }
}
