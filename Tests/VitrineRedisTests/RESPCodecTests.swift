import CHiredis
import NIOCore
import Testing
@testable import VitrineRedis

@Suite struct RESPCodecTests {
    /// hiredis's `redisFormatCommandArgv`: the reference the Swift encoder must match byte for byte.
    static func hiredisFormat(_ arguments: [[UInt8]]) -> [UInt8] {
        var target: UnsafeMutablePointer<CChar>?
        let copies = arguments.map { bytes -> UnsafeMutablePointer<CChar> in
            let copy = UnsafeMutablePointer<CChar>.allocate(capacity: max(bytes.count, 1))
            bytes.withUnsafeBytes { source in
                UnsafeMutableRawPointer(copy).copyMemory(from: source.baseAddress ?? UnsafeRawPointer(copy), byteCount: bytes.count)
            }
            return copy
        }
        defer { copies.forEach { $0.deallocate() } }
        var pointers = copies.map { UnsafePointer<CChar>?(UnsafePointer($0)) }
        var lengths = arguments.map(\.count)
        let written = redisFormatCommandArgv(&target, Int32(arguments.count), &pointers, &lengths)
        guard let target, written > 0 else { return [] }
        defer { redisFreeCommand(target) }
        return Array(UnsafeRawBufferPointer(start: target, count: Int(written)))
    }

    @Test func theSwiftEncoderWritesWhatHiredisWrites() {
        var generator = SystemRandomNumberGenerator()
        // Cheap to make (the suites share two threads): random lengths around the digit-count
        // edges, filled from a few random bytes repeated.
        for round in 0..<400 {
            let count = Int.random(in: 1...(round % 10 == 0 ? 40 : 6), using: &generator)
            let arguments: [[UInt8]] = (0..<count).map { _ in
                let lengths = [0, 1, 9, 10, 11, 99, 100, 101, 1_000, Int.random(in: 0...20_000, using: &generator)]
                let length = lengths[Int.random(in: 0..<lengths.count, using: &generator)]
                let pattern = (0..<7).map { _ in UInt8.random(in: 0...255, using: &generator) }
                return (0..<length).map { pattern[$0 % 7] }
            }
            var buffer = ByteBuffer()
            RESPEncoder.encode(arguments.enumerated().map { index, bytes in
                // Every kind of argument: text (when the bytes are UTF-8), part of a larger text,
                // and raw bytes.
                if index % 3 == 0, let text = String(validating: bytes, as: UTF8.self) { return .string(text) }
                if index % 3 == 1, let text = String(validating: bytes, as: UTF8.self) {
                    // Cut by bytes, not by characters: text that starts with a combining mark
                    // makes one character of it and the "<" (U+059C after "<" did, once in a few
                    // runs, and the test lost the mark, not the encoder).
                    let whole = "<" + text + ">"
                    return .substring(whole[whole.utf8.index(after: whole.utf8.startIndex)..<whole.utf8.index(before: whole.utf8.endIndex)])
                }
                return .bytes(ByteBuffer(bytes: bytes))
            }, into: &buffer)
            #expect(Array(buffer.readableBytesView) == Self.hiredisFormat(arguments))
        }
    }

    /// The case the random test once built wrongly: a part of a larger text that starts with a
    /// combining mark (U+059C) is written with every one of its bytes.
    @Test func aSubstringStartingWithACombiningMarkIsWrittenWhole() {
        let whole = "<\u{059C}ab>"
        let inner = whole[whole.utf8.index(after: whole.utf8.startIndex)..<whole.utf8.index(before: whole.utf8.endIndex)]
        var buffer = ByteBuffer()
        RESPEncoder.encode(["SET", .substring(inner)], into: &buffer)
        #expect(Array(buffer.readableBytesView) == Self.hiredisFormat([Array("SET".utf8), [0xD6, 0x9C, 0x61, 0x62]]))
    }

    @Test func aPipelineIsEachOfItsCommandsInOrder() {
        let commands: [[RESPArgument]] = [["GET", "a"], ["SET", .substring("xkeyx".dropFirst().dropLast()), .bytes(ByteBuffer(bytes: [0, 13, 10]))], [""]]
        var together = ByteBuffer()
        RESPEncoder.encode(pipeline: commands, into: &together)
        var apart = ByteBuffer()
        for command in commands { RESPEncoder.encode(command, into: &apart) }
        #expect(together == apart)
        #expect(Array(together.readableBytesView) == Self.hiredisFormat([Array("GET".utf8), Array("a".utf8)]) + Self.hiredisFormat([Array("SET".utf8), Array("key".utf8), [0, 13, 10]]) + Self.hiredisFormat([[]]))
    }

    @Test func encodesWithHiredis() {
        var buffer = ByteBuffer()
        RESPEncoder.encode(["SET", "key", .bytes(ByteBuffer(bytes: [0, 13, 10, 255]))], into: &buffer)
        #expect(Array(buffer.readableBytesView) == Array("*3\r\n$3\r\nSET\r\n$3\r\nkey\r\n$4\r\n".utf8) + [0, 13, 10, 255] + Array("\r\n".utf8))
        var empty = ByteBuffer()
        RESPEncoder.encode(["GET", ""], into: &empty)
        #expect(String(buffer: empty) == "*2\r\n$3\r\nGET\r\n$0\r\n\r\n")
    }

    @Test func decodesEveryReplyTypeAcrossPartialReads() throws {
        let decoder = RESPDecoder()
        let wire = "+OK\r\n-ERR nope\r\n:42\r\n$5\r\nhello\r\n$-1\r\n*2\r\n$1\r\na\r\n:7\r\n*-1\r\n"
        var values: [RESPValue] = []
        // One byte at a time: the reader must keep partial replies.
        for byte in wire.utf8 {
            try decoder.decode(ByteBuffer(bytes: [byte])) { values.append($0) }
        }
        #expect(values == [
            .simpleString("OK"), .error("ERR nope"), .integer(42), .bulkString(ByteBuffer(string: "hello")), .null,
            .array([.bulkString(ByteBuffer(string: "a")), .integer(7)]), .null,
        ])
    }

    @Test func aLargeReadOfManyRepliesIsDecodedInChunks() throws {
        // 300 bulk strings of 1,000 bytes, a 40-byte one, an array and a status: about 300 KB in
        // one read, fed to hiredis a few kilobytes at a time.
        var input = ByteBuffer()
        for index in 0..<300 { input.writeString("$1000\r\n\(String(repeating: Character(UnicodeScalar(65 + index % 26)!), count: 1000))\r\n") }
        input.writeString("$40\r\n\(String(repeating: "z", count: 40))\r\n*2\r\n:7\r\n$1\r\nx\r\n+OK\r\n")
        let decoder = RESPDecoder()
        var replies: [RESPValue] = []
        try decoder.decode(input) { replies.append($0) }
        #expect(replies.count == 303)
        #expect(replies[0] == .bulkString(ByteBuffer(string: String(repeating: "A", count: 1000))))
        #expect(replies[299] == .bulkString(ByteBuffer(string: String(repeating: Character(UnicodeScalar(65 + 299 % 26)!), count: 1000))))
        #expect(replies[300].buffer?.readableBytes == 40)
        #expect(replies[301] == .array([.integer(7), .bulkString(ByteBuffer(string: "x"))]))
        #expect(replies[302] == .simpleString("OK"))
    }

    @Test func anArraySplitAcrossReadsKeepsItsFirstElements() throws {
        let decoder = RESPDecoder()
        var replies: [RESPValue] = []
        // The first read ends inside an array whose first element (a string) has arrived.
        try decoder.decode(ByteBuffer(string: "$3\r\none\r\n*3\r\n$5\r\nfirst\r\n:2\r\n$4\r\nla")) { replies.append($0) }
        #expect(replies == [.bulkString(ByteBuffer(string: "one"))])
        try decoder.decode(ByteBuffer(string: "st\r\n$3\r\ntwo\r\n")) { replies.append($0) }
        #expect(replies == [
            .bulkString(ByteBuffer(string: "one")),
            .array([.bulkString(ByteBuffer(string: "first")), .integer(2), .bulkString(ByteBuffer(string: "last"))]),
            .bulkString(ByteBuffer(string: "two")),
        ])
    }

    @Test func repliesBeforeGarbageAreDeliveredThenTheError() throws {
        let decoder = RESPDecoder()
        var replies: [RESPValue] = []
        #expect(throws: RedisError.self) {
            try decoder.decode(ByteBuffer(string: "$2\r\nok\r\n:5\r\n?what\r\n")) { replies.append($0) }
        }
        #expect(replies == [.bulkString(ByteBuffer(string: "ok")), .integer(5)])
    }

    @Test func garbageIsAProtocolError() throws {
        let decoder = RESPDecoder()
        #expect(throws: RedisError.self) { try decoder.decode(ByteBuffer(string: "?what\r\n")) { _ in } }
    }

    @Test func commandQueueMatchesInOrderAndKeepsAbandonedPlaces() {
        var queue = RedisCommandQueue<String>()
        let first = queue.enqueue("a").ticket
        _ = queue.enqueue("b")
        _ = queue.enqueue("c")
        #expect(queue.abandon(first + 1) == "b")
        #expect(queue.receive().waiter == "a")
        let second = queue.receive()
        #expect(second.waiter == nil && !second.unexpected, "b's reply is consumed by b's place")
        #expect(queue.receive().waiter == "c")
        #expect(queue.receive().unexpected)
        _ = queue.enqueue("d")
        #expect(queue.close() == ["d"])
        #expect(queue.isClosed)
        if case .fail = queue.enqueue("e").0 {} else { Issue.record("a closed queue must refuse commands") }
    }

    @Test func aPipelineWaitsInOnePlaceForAllItsReplies() {
        var queue = RedisCommandQueue<String>()
        _ = queue.enqueue("pipeline", replies: 3)
        _ = queue.enqueue("after")
        #expect(queue.inFlight == 2)
        #expect(queue.receive().waiter == "pipeline")
        #expect(queue.receive().waiter == "pipeline")
        #expect(queue.inFlight == 2)
        #expect(queue.receive().waiter == "pipeline")
        #expect(queue.receive().waiter == "after")
        #expect(queue.receive().unexpected)
        if case .fail = queue.enqueue("none", replies: 0).0 {} else { Issue.record("a waiter of no reply would never leave the queue") }
    }

    @Test func anAbandonedPipelineStillConsumesItsReplies() {
        var queue = RedisCommandQueue<String>()
        let ticket = queue.enqueue("pipeline", replies: 3).ticket
        _ = queue.enqueue("after")
        #expect(queue.receive().waiter == "pipeline")
        #expect(queue.abandon(ticket) == "pipeline")
        #expect(queue.abandonAll { $0 == "pipeline" }.isEmpty)
        #expect(queue.receive().waiter == nil)
        let last = queue.receive()
        #expect(last.waiter == nil && !last.unexpected, "the pipeline's third reply is still its own")
        #expect(queue.receive().waiter == "after")
    }

    @Test func commandQueueTicketsSurviveCompaction() {
        var queue = RedisCommandQueue<Int>()
        for value in 0..<5_000 { _ = queue.enqueue(value) }
        for _ in 0..<3_000 { _ = queue.receive() }
        let ticket = queue.nextTicket
        _ = queue.enqueue(99)
        #expect(queue.abandon(ticket) == 99)
        #expect(queue.inFlight == 2_001)
    }

    @Test func urls() throws {
        #expect(try RedisURL(parsing: "redis://127.0.0.1:6380/2") == RedisURL(host: "127.0.0.1", port: 6380, database: 2))
        #expect(try RedisURL(parsing: "redis://:secret@cache:6379") == RedisURL(host: "cache", port: 6379, password: "secret"))
        #expect(try RedisURL(parsing: "redis://app:secret@cache/1") == RedisURL(host: "cache", port: 6379, user: "app", password: "secret", database: 1))
        #expect(throws: RedisError.self) { try RedisURL(parsing: "http://x") }
        #expect(throws: RedisError.self) { try RedisURL(parsing: "redis://x:99999") }
        #expect(try RedisURL(parsing: "redis://app:secret@cache/1").description == "redis://app:***@cache:6379/1")
    }

    @Test func tlsURLs() throws {
        #expect(try RedisURL(parsing: "rediss://cache:6380/1") == RedisURL(host: "cache", port: 6380, database: 1, tls: true))
        #expect(
            try RedisURL(parsing: "rediss://:pw@cache:6380?ssl_ca_certs=/etc/ca.pem")
                == RedisURL(host: "cache", port: 6380, password: "pw", tls: true, caCertificatesFile: "/etc/ca.pem"))
        #expect(try RedisURL(parsing: "rediss://cache/2?ssl_ca_certs=/etc/ca.pem").description == "rediss://cache:6379/2?ssl_ca_certs=/etc/ca.pem")
        // A CA file means nothing without TLS; an unknown parameter is an error, not ignored.
        #expect(throws: RedisError.self) { try RedisURL(parsing: "redis://cache?ssl_ca_certs=/etc/ca.pem") }
        #expect(throws: RedisError.self) { try RedisURL(parsing: "rediss://cache?verify=no") }
        #expect(throws: RedisError.self) { try RedisTLS.context(for: RedisURL(parsing: "rediss://cache?ssl_ca_certs=/nonexistent.pem")) }
        #expect(try RedisTLS.context(for: RedisURL(parsing: "redis://cache")) == nil)
    }
}
