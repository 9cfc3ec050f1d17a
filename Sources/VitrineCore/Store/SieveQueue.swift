/// The SIEVE eviction policy (Zhang et al., NSDI '24) over integer slots.
///
/// New slots enter at the head; a hit only sets a bit, so hits never reorder anything.
/// To evict, a hand walks from the tail towards the head, clearing set bits and stopping
/// at the first slot whose bit is clear. On skewed web traffic SIEVE's miss ratio is lower
/// than LRU's, and it needs no list surgery on a hit. The policy knows nothing about keys or
/// values: the storage maps its slots to entries (as Caffeine separates storage from policy).
public struct SieveQueue: Sendable {
    private static let none: Int32 = -1

    /// Towards the head (newer entries).
    private var newer: [Int32] = []
    /// Towards the tail (older entries).
    private var older: [Int32] = []
    private var visited: [Bool] = []
    private var head: Int32 = none
    private var tail: Int32 = none
    private var hand: Int32 = none
    public private(set) var count = 0

    public init() {}

    /// Adds `slot` at the head as not yet visited.
    public mutating func insert(_ slot: Int) {
        ensureCapacity(slot + 1)
        let index = Int32(slot)
        newer[slot] = Self.none
        older[slot] = head
        visited[slot] = false
        if head != Self.none { newer[Int(head)] = index }
        head = index
        if tail == Self.none { tail = index }
        count += 1
    }

    /// Records a hit on `slot`.
    public mutating func markVisited(_ slot: Int) {
        visited[slot] = true
    }

    /// Removes `slot` (purged or replaced), keeping the hand valid.
    public mutating func remove(_ slot: Int) {
        let index = Int32(slot)
        let newerSlot = newer[slot]
        let olderSlot = older[slot]
        if hand == index { hand = newerSlot }
        if newerSlot != Self.none { older[Int(newerSlot)] = olderSlot } else { head = olderSlot }
        if olderSlot != Self.none { newer[Int(olderSlot)] = newerSlot } else { tail = newerSlot }
        newer[slot] = Self.none
        older[slot] = Self.none
        count -= 1
    }

    /// The slot SIEVE would evict next, with visited bits on the way cleared. The caller removes
    /// it (through `remove`) together with its entry.
    public mutating func nextVictim() -> Int? {
        guard count > 0 else { return nil }
        var current = hand == Self.none ? tail : hand
        while visited[Int(current)] {
            visited[Int(current)] = false
            current = newer[Int(current)]
            if current == Self.none { current = tail }
        }
        hand = newer[Int(current)]
        return Int(current)
    }

    private mutating func ensureCapacity(_ capacity: Int) {
        guard capacity > newer.count else { return }
        let grown = Swift.max(capacity, newer.count * 2, 16)
        let extra = grown - newer.count
        newer.append(contentsOf: repeatElement(Self.none, count: extra))
        older.append(contentsOf: repeatElement(Self.none, count: extra))
        visited.append(contentsOf: repeatElement(false, count: extra))
    }
}
