import Testing
@testable import VitrineCore

@Suite struct SieveQueueTests {
    @Test func evictsOldestUnvisitedFirst() {
        var queue = SieveQueue()
        for slot in 0..<4 { queue.insert(slot) }
        #expect(queue.nextVictim() == 0)
        queue.remove(0)
        #expect(queue.nextVictim() == 1)
    }

    @Test func visitedSlotsGetASecondChance() {
        var queue = SieveQueue()
        for slot in 0..<4 { queue.insert(slot) }
        queue.markVisited(0)
        queue.markVisited(1)
        #expect(queue.nextVictim() == 2)
        queue.remove(2)
        // The hand continues from where it stopped: 3 is next, 0 and 1 have lost their bit.
        #expect(queue.nextVictim() == 3)
        queue.remove(3)
        #expect(queue.nextVictim() == 0)
    }

    @Test func removingTheSlotUnderTheHandKeepsTheQueueValid() {
        var queue = SieveQueue()
        for slot in 0..<3 { queue.insert(slot) }
        queue.markVisited(0)
        #expect(queue.nextVictim() == 1)
        queue.remove(2)
        queue.remove(1)
        #expect(queue.count == 1)
        #expect(queue.nextVictim() == 0)
        queue.remove(0)
        #expect(queue.nextVictim() == nil)
    }

    /// On a skewed (Zipf-like) trace SIEVE keeps the hot items: its hit ratio beats FIFO's.
    @Test func hitRatioOnSkewedTraceBeatsFIFO() {
        var generator = LinearCongruential(seed: 7)
        let items = 10_000
        let capacity = 500
        // Zipf(1.0) by inverse CDF over precomputed weights.
        var cumulative: [Double] = []
        var total = 0.0
        for rank in 1...items {
            total += 1.0 / Double(rank)
            cumulative.append(total)
        }
        let trace = (0..<200_000).map { _ -> Int in
            let target = Double(generator.next() % 1_000_000) / 1_000_000 * total
            var low = 0
            var high = items - 1
            while low < high {
                let mid = (low + high) / 2
                if cumulative[mid] < target { low = mid + 1 } else { high = mid }
            }
            return low
        }
        func simulate(sieve: Bool) -> Double {
            var queue = SieveQueue()
            var slotOf: [Int: Int] = [:]
            var itemOf: [Int: Int] = [:]
            var fifo: [Int] = []
            var hits = 0
            var nextSlot = 0
            for item in trace {
                if let slot = slotOf[item] {
                    hits += 1
                    if sieve { queue.markVisited(slot) }
                    continue
                }
                if slotOf.count == capacity {
                    let victim = sieve ? queue.nextVictim()! : fifo.removeFirst()
                    queue.remove(victim)
                    slotOf[itemOf[victim]!] = nil
                    itemOf[victim] = nil
                    if !sieve { fifo.removeAll { $0 == victim } }
                    slotOf[item] = victim
                    itemOf[victim] = item
                    queue.insert(victim)
                    if !sieve { fifo.append(victim) }
                } else {
                    slotOf[item] = nextSlot
                    itemOf[nextSlot] = item
                    queue.insert(nextSlot)
                    if !sieve { fifo.append(nextSlot) }
                    nextSlot += 1
                }
            }
            return Double(hits) / Double(trace.count)
        }
        let sieveRatio = simulate(sieve: true)
        let fifoRatio = simulate(sieve: false)
        #expect(sieveRatio > fifoRatio + 0.03, "SIEVE \(sieveRatio) vs FIFO \(fifoRatio)")
    }
}

struct LinearCongruential {
    var state: UInt64
    init(seed: UInt64) { state = seed }
    mutating func next() -> UInt64 {
        state = state &* 6364136223846793005 &+ 1442695040888963407
        return state >> 33
    }
}
