import NIOCore
import NIOEmbedded
import Testing
@testable import VitrineRedis

@Suite struct RedisConnectionHandlerTests {
    func makeChannel() throws -> EmbeddedChannel {
        let channel = EmbeddedChannel()
        try channel.pipeline.syncOperations.addHandler(RedisConnectionHandler())
        return channel
    }

    @Test func pipelinedRepliesReachTheirCommandsInOrder() throws {
        let channel = try makeChannel()
        let loop = channel.embeddedEventLoop
        let promises = (0..<3).map { _ in loop.makePromise(of: RESPValue.self) }
        for (index, promise) in promises.enumerated() {
            try channel.writeOutbound(RedisRequest(arguments: ["GET", .string("k\(index)")], promise: promise, timeout: nil))
        }
        var written = ""
        while let buffer = try channel.readOutbound(as: ByteBuffer.self) { written += String(buffer: buffer) }
        #expect(written == "*2\r\n$3\r\nGET\r\n$2\r\nk0\r\n*2\r\n$3\r\nGET\r\n$2\r\nk1\r\n*2\r\n$3\r\nGET\r\n$2\r\nk2\r\n")
        try channel.writeInbound(ByteBuffer(string: "$2\r\nv0\r\n$-1\r\n-ERR wrong"))
        #expect(try promises[0].futureResult.wait() == .bulkString(ByteBuffer(string: "v0")))
        #expect(try promises[1].futureResult.wait() == .null)
        try channel.writeInbound(ByteBuffer(string: " type\r\n"))
        #expect(throws: RedisError.server("ERR wrong type")) { try promises[2].futureResult.wait() }
    }

    @Test func aTimedOutCommandDoesNotStealTheNextReply() throws {
        let channel = try makeChannel()
        let loop = channel.embeddedEventLoop
        let slow = loop.makePromise(of: RESPValue.self)
        let next = loop.makePromise(of: RESPValue.self)
        try channel.writeOutbound(RedisRequest(arguments: ["GET", "a"], promise: slow, timeout: .milliseconds(10)))
        try channel.writeOutbound(RedisRequest(arguments: ["GET", "b"], promise: next, timeout: nil))
        loop.advanceTime(by: .milliseconds(20))
        #expect(throws: RedisError.timeout) { try slow.futureResult.wait() }
        try channel.writeInbound(ByteBuffer(string: "$1\r\na\r\n$1\r\nb\r\n"))
        #expect(try next.futureResult.wait() == .bulkString(ByteBuffer(string: "b")))
    }

    @Test func eachCommandTimesOutAtItsOwnDeadline() throws {
        let channel = try makeChannel()
        let loop = channel.embeddedEventLoop
        let short = loop.makePromise(of: RESPValue.self)
        let long = loop.makePromise(of: RESPValue.self)
        let patient = loop.makePromise(of: RESPValue.self)
        try channel.writeOutbound(RedisRequest(arguments: ["GET", "a"], promise: long, timeout: .milliseconds(50)))
        try channel.writeOutbound(RedisRequest(arguments: ["GET", "b"], promise: short, timeout: .milliseconds(10)))
        try channel.writeOutbound(RedisRequest(arguments: ["GET", "c"], promise: patient, timeout: nil))
        loop.advanceTime(by: .milliseconds(20))
        #expect(throws: RedisError.timeout) { try short.futureResult.wait() }
        loop.advanceTime(by: .milliseconds(20))
        // Not yet: 40 ms of 50.
        try channel.writeInbound(ByteBuffer(string: "$1\r\na\r\n"))
        #expect(try long.futureResult.wait() == .bulkString(ByteBuffer(string: "a")))
        loop.advanceTime(by: .seconds(10))
        try channel.writeInbound(ByteBuffer(string: "$1\r\nb\r\n$1\r\nc\r\n"))
        #expect(try patient.futureResult.wait() == .bulkString(ByteBuffer(string: "c")))
    }

    @Test func aPipelineGetsItsRepliesTogetherInOrder() throws {
        let channel = try makeChannel()
        let loop = channel.embeddedEventLoop
        let before = loop.makePromise(of: RESPValue.self)
        let pipeline = loop.makePromise(of: [RESPValue].self)
        let after = loop.makePromise(of: RESPValue.self)
        try channel.writeOutbound(RedisRequest(arguments: ["GET", "a"], promise: before, timeout: nil))
        try channel.writeOutbound(RedisRequest(pipeline: [["GET", "b"], ["INCR", "s"], ["GET", "c"]], promise: pipeline, timeout: nil))
        try channel.writeOutbound(RedisRequest(arguments: ["GET", "d"], promise: after, timeout: nil))
        var written = ""
        while let buffer = try channel.readOutbound(as: ByteBuffer.self) { written += String(buffer: buffer) }
        #expect(written.components(separatedBy: "*2\r\n").count == 6, "five commands: \(written)")
        try channel.writeInbound(ByteBuffer(string: "$1\r\na\r\n$1\r\nb\r\n-ERR not an integer\r\n"))
        #expect(try before.futureResult.wait() == .bulkString(ByteBuffer(string: "a")))
        try channel.writeInbound(ByteBuffer(string: "$-1\r\n$1\r\nd\r\n"))
        #expect(try pipeline.futureResult.wait() == [.bulkString(ByteBuffer(string: "b")), .error("ERR not an integer"), .null])
        #expect(try after.futureResult.wait() == .bulkString(ByteBuffer(string: "d")))
    }

    @Test func aPipelineTimesOutAsAWholeAndStealsNoReply() throws {
        let channel = try makeChannel()
        let loop = channel.embeddedEventLoop
        let pipeline = loop.makePromise(of: [RESPValue].self)
        let next = loop.makePromise(of: RESPValue.self)
        try channel.writeOutbound(RedisRequest(pipeline: [["GET", "a"], ["GET", "b"]], promise: pipeline, timeout: .milliseconds(10)))
        try channel.writeOutbound(RedisRequest(arguments: ["GET", "c"], promise: next, timeout: nil))
        try channel.writeInbound(ByteBuffer(string: "$1\r\na\r\n"))
        loop.advanceTime(by: .milliseconds(20))
        #expect(throws: RedisError.timeout) { try pipeline.futureResult.wait() }
        try channel.writeInbound(ByteBuffer(string: "$1\r\nb\r\n$1\r\nc\r\n"))
        #expect(try next.futureResult.wait() == .bulkString(ByteBuffer(string: "c")))
    }

    @Test func anEmptyPipelineAnswersAtOnce() throws {
        let channel = try makeChannel()
        let pipeline = channel.embeddedEventLoop.makePromise(of: [RESPValue].self)
        try channel.writeOutbound(RedisRequest(pipeline: [], promise: pipeline, timeout: nil))
        #expect(try pipeline.futureResult.wait() == [])
    }

    @Test func aRequestFitsAChannelMessageInline() {
        // NIOAny boxes (allocates) anything over three words.
        #expect(MemoryLayout<RedisRequest>.size <= 3 * MemoryLayout<Int>.size)
    }

    @Test func closingFailsEverythingInFlight() throws {
        let channel = try makeChannel()
        let promise = channel.embeddedEventLoop.makePromise(of: RESPValue.self)
        let pipeline = channel.embeddedEventLoop.makePromise(of: [RESPValue].self)
        try channel.writeOutbound(RedisRequest(arguments: ["PING"], promise: promise, timeout: nil))
        try channel.writeOutbound(RedisRequest(pipeline: [["PING"], ["PING"]], promise: pipeline, timeout: nil))
        _ = try? channel.finish()
        #expect(throws: RedisError.connectionClosed) { try promise.futureResult.wait() }
        #expect(throws: RedisError.connectionClosed) { try pipeline.futureResult.wait() }
    }

    @Test func aBrokenStreamClosesTheConnection() throws {
        let channel = try makeChannel()
        let promise = channel.embeddedEventLoop.makePromise(of: RESPValue.self)
        try channel.writeOutbound(RedisRequest(arguments: ["PING"], promise: promise, timeout: nil))
        try channel.writeInbound(ByteBuffer(string: "!nonsense\r\n"))
        #expect(throws: RedisError.self) { try promise.futureResult.wait() }
        #expect(!channel.isActive)
    }
}
