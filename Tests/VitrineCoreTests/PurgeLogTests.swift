import Testing
import VitrineCore

/// The purge log's decisions after a subscription gap, without Redis.
@Suite struct PurgeLogTests {
    static func id(_ text: String) -> PurgeLog.EntryID { PurgeLog.EntryID(parsing: text)! }

    @Test func entryIDsParseStrictlyAndOrderAsRedisDoes() {
        #expect(Self.id("1700000000000-2") < Self.id("1700000000000-10"))
        #expect(Self.id("1700000000000-99") < Self.id("1700000000001-0"))
        #expect(Self.id("5-3").description == "5-3")
        for bad in ["", "5", "5-", "-3", "5-3-1", "a-1", "99999999999999999999999-1", "5 -3"] {
            #expect(PurgeLog.EntryID(parsing: bad) == nil, "\(bad)")
        }
    }

    @Test func aGapIsReplayedWhenTheLogReachesBackToIt() {
        let state = PurgeLog.State(generation: "g1", maxDeleted: Self.id("100-0"))
        #expect(PurgeLog.catchUp(lastApplied: Self.id("150-0"), knownGeneration: "g1", now: state) == .replay(after: Self.id("150-0")))
        #expect(PurgeLog.catchUp(lastApplied: Self.id("100-0"), knownGeneration: "g1", now: state) == .replay(after: Self.id("100-0")))
    }

    @Test func l1IsDroppedWhenTheLogCannotSayWhatWasMissed() {
        let state = PurgeLog.State(generation: "g2", maxDeleted: Self.id("100-0"))
        func drops(_ decision: PurgeLog.CatchUp) -> Bool {
            if case .dropL1 = decision { return true }
            return false
        }
        #expect(drops(PurgeLog.catchUp(lastApplied: Self.id("150-0"), knownGeneration: "g1", now: state)), "Redis emptied")
        #expect(drops(PurgeLog.catchUp(lastApplied: Self.id("150-0"), knownGeneration: nil, now: state)), "generation never known")
        #expect(drops(PurgeLog.catchUp(lastApplied: Self.id("99-0"), knownGeneration: "g2", now: state)), "trimmed past the gap")
    }
}
