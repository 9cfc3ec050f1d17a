import Synchronization

/// A value a configuration reload replaces whole (the routes, the listings): readers take the
/// current one for each request, so a request sees either the old value or the new, never a mix.
/// A connection keeps its own copy and checks one atomic generation per request, so the request
/// path takes no lock.
package final class Reloadable<Value: Sendable>: Sendable {
    private let generation = Atomic<Int>(0)
    private let value: Mutex<Value>

    package init(_ value: Value) {
        self.value = Mutex(value)
    }

    /// The current value.
    package var current: Value {
        value.withLock { $0 }
    }

    /// Puts `new` in place for every request from now on; returns the value it replaced.
    @discardableResult
    package func replace(with new: Value) -> Value {
        let old = value.withLock { value in
            defer { value = new }
            return value
        }
        generation.add(1, ordering: .releasing)
        return old
    }

    /// A connection's copy, refreshed when a reload has replaced the value since it was taken.
    struct Copy {
        fileprivate var generation: Int
        fileprivate var value: Value
    }

    func copy() -> Copy {
        let generation = generation.load(ordering: .acquiring)
        return Copy(generation: generation, value: current)
    }

    /// A copy for one of a connection's streams, taken from the connection's own: no lock when
    /// nothing changed since.
    func copy(through copy: inout Copy) -> Copy {
        _ = current(through: &copy)
        return copy
    }

    /// The current value through a connection's copy: one atomic load when nothing changed.
    func current(through copy: inout Copy) -> Value {
        let now = generation.load(ordering: .acquiring)
        if now != copy.generation {
            copy = Copy(generation: now, value: current)
        }
        return copy.value
    }
}
