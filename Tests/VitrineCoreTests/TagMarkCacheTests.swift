import Testing
import VitrineCore

/// What a node may remember of a cluster's tag marks, and when it must read them again.
@Suite struct TagMarkCacheTests {
    static let marks = TagMarkCache.Marks(hard: 7, soft: 3)

    @Test func nothingIsRememberedUntilTheFanoutIsLive() {
        var cache = TagMarkCache(capacity: 10)
        let kept1 = cache.learn("product:1", Self.marks, readWith: cache.ticket)
        #expect(!kept1, "no subscription yet: a purge could go unheard")
        #expect(cache.marks(of: "product:1") == nil)
        cache.trust()
        let kept2 = cache.learn("product:1", Self.marks, readWith: cache.ticket)
        #expect(kept2)
        #expect(cache.marks(of: "product:1") == Self.marks)
        #expect(cache.count == 1)
    }

    @Test func aPurgedTagIsReadAgain() {
        var cache = TagMarkCache(capacity: 10)
        cache.trust()
        cache.learn("product:1", Self.marks, readWith: cache.ticket)
        cache.learn("product:2", Self.marks, readWith: cache.ticket)
        cache.forget(["product:1"])
        #expect(cache.marks(of: "product:1") == nil)
        #expect(cache.marks(of: "product:2") == Self.marks, "only the purged tag is forgotten")
    }

    /// A read sent before a purge's marks were set can be answered after its message was heard:
    /// its (old) marks must not be remembered, or the purge would never be seen by this node.
    @Test func aReadAnsweredAfterAPurgeWasHeardIsNotRemembered() {
        var cache = TagMarkCache(capacity: 10)
        cache.trust()
        let sent = cache.ticket
        cache.forget(["category:9"])
        let kept3 = cache.learn("product:1", Self.marks, readWith: sent)
        #expect(!kept3, "any purge since the read was sent: not kept")
        #expect(cache.marks(of: "product:1") == nil)
        let kept4 = cache.learn("product:1", Self.marks, readWith: cache.ticket)
        #expect(kept4)
    }

    @Test func aLostFanoutForgetsEverythingAndRemembersNothingUntilItIsBack() {
        var cache = TagMarkCache(capacity: 10)
        cache.trust()
        let beforeTheGap = cache.ticket
        cache.learn("product:1", Self.marks, readWith: cache.ticket)
        cache.distrust()
        #expect(!cache.isTrusted)
        #expect(cache.count == 0)
        #expect(cache.marks(of: "product:1") == nil)
        let kept5 = cache.learn("product:1", Self.marks, readWith: cache.ticket)
        #expect(!kept5, "purges may go unheard meanwhile")
        cache.trust()
        let kept6 = cache.learn("product:1", Self.marks, readWith: beforeTheGap)
        #expect(!kept6, "a read sent before the gap is not kept after it")
        let kept7 = cache.learn("product:1", Self.marks, readWith: cache.ticket)
        #expect(kept7)
    }

    @Test func itHoldsAtMostItsCapacity() {
        var cache = TagMarkCache(capacity: 3)
        cache.trust()
        for index in 0..<10 { cache.learn("product:\(index)", Self.marks, readWith: cache.ticket) }
        #expect(cache.count == 3)
        #expect(cache.marks(of: "product:9") == Self.marks, "the newest is kept")
        cache.learn("product:9", TagMarkCache.Marks(hard: 8, soft: 3), readWith: cache.ticket)
        #expect(cache.count == 3, "learning a known tag again replaces it")
        #expect(cache.marks(of: "product:9")?.hard == 8)
        var none = TagMarkCache(capacity: 0)
        none.trust()
        let kept8 = none.learn("product:1", Self.marks, readWith: none.ticket)
        #expect(!kept8)
    }
}
