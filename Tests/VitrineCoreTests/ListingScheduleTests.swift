import Testing
@testable import VitrineCore

@Suite struct ListingScheduleTests {
    let timing = ListingSchedule<String>.Timing(refresh: .seconds(60), debounce: .milliseconds(200), maxStale: .seconds(5))
    let ms: UInt64 = 1_000_000

    @Test func templatesRenderEveryCombination() throws {
        let template = try #require(ListingTemplate("/catalog/categories/{category}/products?sort={sort}&page={page}"))
        #expect(template.parameters == ["category", "sort", "page"])
        let combinations = ListingTemplate.combinations([("category", ["1", "2"]), ("sort", ["a", "b"]), ("page", ["1", "2", "3"])])
        #expect(combinations.count == 12)
        #expect(template.render(combinations[0]) == "/catalog/categories/1/products?sort=a&page=1")
        #expect(template.render(combinations[11]) == "/catalog/categories/2/products?sort=b&page=3")
        #expect(ListingTemplate("/a/{b") == nil)
        #expect(ListingTemplate("/a/{}") == nil)
        #expect(ListingTemplate("/a/b}") == nil)
        #expect(ListingTemplate("listing:category:{category}")?.render(["category": "7"]) == "listing:category:7")
    }

    @Test func warmUpIsBoundedByTheConcurrency() {
        var schedule = ListingSchedule<String>()
        for page in 0..<10 { schedule.add("p\(page)", timing: timing, now: 0) }
        #expect(!schedule.isWarm)
        let first = schedule.takeDue(now: 0, limit: 4)
        #expect(first.count == 4)
        #expect(schedule.takeDue(now: 0, limit: 4).isEmpty)
        for page in first { schedule.finished(page, succeeded: true, now: 10 * ms) }
        let second = schedule.takeDue(now: 10 * ms, limit: 4)
        #expect(second.count == 4 && Set(second).isDisjoint(with: first))
        #expect(schedule.isServable(first[0], now: 10 * ms))
        for page in second { schedule.finished(page, succeeded: true, now: 20 * ms) }
        let last = schedule.takeDue(now: 20 * ms, limit: 4)
        #expect(last.count == 2)
        for page in last { schedule.finished(page, succeeded: true, now: 30 * ms) }
        #expect(schedule.isWarm)
        // Nothing due again until the refresh interval ends.
        #expect(schedule.nextDue.map { $0 >= 60_000 * ms } == true)
    }

    @Test func aBurstOfPurgesCostsAFewRecomputes() {
        var schedule = ListingSchedule<String>()
        schedule.add("listing", timing: timing, now: 0)
        _ = schedule.takeDue(now: 0, limit: 1)
        schedule.finished("listing", succeeded: true, now: ms)
        // 1,000 purges over 10 s, each recompute taking 20 ms; then quiet for a second.
        var recomputes = 0
        var inFlightUntil: UInt64?
        for step in 0..<1_100 {
            let now = UInt64(2 + step * 10) * ms
            if step < 1_000 { schedule.invalidate("listing", now: now) }
            if let until = inFlightUntil, now >= until {
                schedule.finished("listing", succeeded: true, now: now)
                inFlightUntil = nil
            }
            if !schedule.takeDue(now: now, limit: 1).isEmpty {
                recomputes += 1
                inFlightUntil = now + 20 * ms
            }
            // The version served is never behind for longer than max_stale.
            #expect(schedule.isServable("listing", now: now))
        }
        // One at its start, one every max_stale / 2 (2.5 s) during the burst, one after it: not
        // one per purge.
        #expect(recomputes >= 5 && recomputes <= 7, "\(recomputes) recomputes")
    }

    @Test func aLonePurgeIsRecomputedAtOnce() {
        var schedule = ListingSchedule<String>()
        schedule.add("listing", timing: timing, now: 0)
        _ = schedule.takeDue(now: 0, limit: 1)
        schedule.finished("listing", succeeded: true, now: ms)
        schedule.invalidate("listing", now: 1_000 * ms)
        // The same purge seen again before the recompute begins does not put it off.
        schedule.invalidate("listing", now: 1_000 * ms)
        #expect(schedule.takeDue(now: 1_000 * ms, limit: 1) == ["listing"])
        schedule.finished("listing", succeeded: true, now: 1_020 * ms)
        // Another purge soon after a purge-driven recompute waits for the debounce...
        schedule.invalidate("listing", now: 1_100 * ms)
        #expect(schedule.takeDue(now: 1_299 * ms, limit: 1).isEmpty)
        #expect(schedule.takeDue(now: 1_300 * ms, limit: 1) == ["listing"])
        schedule.finished("listing", succeeded: true, now: 1_320 * ms)
        // ...one after a quiet spell goes at once again.
        schedule.invalidate("listing", now: 2_000 * ms)
        #expect(schedule.takeDue(now: 2_000 * ms, limit: 1) == ["listing"])
    }

    @Test func pastMaxStaleTheVersionIsNotServed() {
        var schedule = ListingSchedule<String>()
        schedule.add("listing", timing: timing, now: 0)
        _ = schedule.takeDue(now: 0, limit: 1)
        schedule.finished("listing", succeeded: true, now: 0)
        schedule.invalidate("listing", now: 1_000 * ms)
        #expect(schedule.isServable("listing", now: 5_000 * ms))
        #expect(!schedule.isServable("listing", now: 6_001 * ms))
        // A recompute that fails keeps the version, retried with backoff; one that lands clears it.
        _ = schedule.takeDue(now: 1_200 * ms, limit: 1)
        schedule.finished("listing", succeeded: false, now: 1_300 * ms)
        #expect(schedule.takeDue(now: 1_400 * ms, limit: 1).isEmpty)
        #expect(schedule.takeDue(now: 1_550 * ms, limit: 1) == ["listing"])
        schedule.finished("listing", succeeded: true, now: 1_600 * ms)
        #expect(schedule.isServable("listing", now: 9_000 * ms))
    }

    @Test func aPurgeDuringARecomputeCallsForAnother() {
        var schedule = ListingSchedule<String>()
        schedule.add("listing", timing: timing, now: 0)
        _ = schedule.takeDue(now: 0, limit: 1)
        schedule.invalidate("listing", now: 5 * ms)
        schedule.finished("listing", succeeded: true, now: 10 * ms)
        // The version fetched may predate the purge: another one, at once (no purge-driven
        // recompute was under way)...
        #expect(schedule.takeDue(now: 10 * ms, limit: 1) == ["listing"])
        // ...and a purge during that one is debounced.
        schedule.invalidate("listing", now: 15 * ms)
        schedule.finished("listing", succeeded: true, now: 30 * ms)
        #expect(schedule.takeDue(now: 100 * ms, limit: 1).isEmpty)
        #expect(schedule.takeDue(now: 229 * ms, limit: 1).isEmpty)
        #expect(schedule.takeDue(now: 230 * ms, limit: 1) == ["listing"])
    }
}
