import CHiredis
import NIOCore

/// Encodes commands as RESP arrays of bulk strings (`*N\r\n$len\r\nbytes\r\n...`), written
/// straight into the outgoing buffer: no intermediate copy. The bytes are exactly hiredis's
/// `redisFormatCommandArgv`'s (the tests compare them on random commands). It replaced hiredis's
/// formatting, which copied every argument twice (`redis-throughput`, pipelines of 64 GETs on one
/// connection: 373-427k GET/s before, 456-486k after, in one interleaved run).
public enum RESPEncoder {
    /// Appends the RESP encoding of `arguments` to `buffer`: one capacity check and one write
    /// through a raw pointer for the whole command (byte by byte through `ByteBuffer`'s own
    /// methods, exclusivity checks were a fifth of the client's CPU).
    public static func encode(_ arguments: [RESPArgument], into buffer: inout ByteBuffer) {
        buffer.writeWithUnsafeMutableBytes(minimumWritableBytes: capacity(arguments)) { output in
            guard let base = output.baseAddress else { return 0 }
            return write(arguments, to: base, at: 0)
        }
    }

    /// Appends every command of a pipeline, one after the other, in one write through a raw
    /// pointer: the bytes of `encode` for each, with one capacity check for all of them.
    public static func encode(pipeline commands: [[RESPArgument]], into buffer: inout ByteBuffer) {
        var total = 0
        for arguments in commands { total &+= capacity(arguments) }
        buffer.writeWithUnsafeMutableBytes(minimumWritableBytes: total) { output in
            guard let base = output.baseAddress else { return 0 }
            var at = 0
            for arguments in commands { at = write(arguments, to: base, at: at) }
            return at
        }
    }

    /// The most one command's encoding takes: `*N\r\n`, and per argument `$len\r\n` + bytes +
    /// `\r\n`, 20 digits at most per number.
    @inline(__always)
    static func capacity(_ arguments: [RESPArgument]) -> Int {
        var capacity = 23
        for argument in arguments { capacity &+= argument.byteCount &+ 25 }
        return capacity
    }

    /// Writes one command at `at`, in space `capacity` reserved; returns where it ended.
    @inline(__always)
    static func write(_ arguments: [RESPArgument], to base: UnsafeMutableRawPointer, at start: Int) -> Int {
        var at = start
        base.storeBytes(of: UInt8(ascii: "*"), toByteOffset: at, as: UInt8.self)
        at &+= 1
        at = writeDecimalLine(arguments.count, to: base, at: at)
        for argument in arguments {
            base.storeBytes(of: UInt8(ascii: "$"), toByteOffset: at, as: UInt8.self)
            at &+= 1
            switch argument {
            case .string(var text):
                at = text.withUTF8 { writeBulk(UnsafeRawBufferPointer($0), to: base, at: at) }
            case .substring(var text):
                at = text.withUTF8 { writeBulk(UnsafeRawBufferPointer($0), to: base, at: at) }
            case .bytes(let bytes):
                at = bytes.withUnsafeReadableBytes { writeBulk($0, to: base, at: at) }
            }
            base.storeBytes(of: 0x0D, toByteOffset: at, as: UInt8.self)
            base.storeBytes(of: 0x0A, toByteOffset: at &+ 1, as: UInt8.self)
            at &+= 2
        }
        return at
    }

    /// Writes a bulk string's length line and its bytes at `at`; returns where they ended.
    @inline(__always)
    static func writeBulk(_ source: UnsafeRawBufferPointer, to base: UnsafeMutableRawPointer, at start: Int) -> Int {
        let at = writeDecimalLine(source.count, to: base, at: start)
        if let bytes = source.baseAddress { (base + at).copyMemory(from: bytes, byteCount: source.count) }
        return at &+ source.count
    }

    /// Writes `value` (never negative: a count or a length) in decimal and CRLF at `at`; returns
    /// where it ended. The caller reserved 22 bytes for it.
    @inline(__always)
    static func writeDecimalLine(_ value: Int, to base: UnsafeMutableRawPointer, at start: Int) -> Int {
        var digits = 1
        var rest = max(value, 0)
        while rest >= 10 {
            rest /= 10
            digits &+= 1
        }
        var remaining = max(value, 0)
        var index = start &+ digits &- 1
        while index >= start {
            base.storeBytes(of: UInt8(truncatingIfNeeded: 0x30 &+ remaining % 10), toByteOffset: index, as: UInt8.self)
            remaining /= 10
            index &-= 1
        }
        let end = start &+ digits
        base.storeBytes(of: 0x0D, toByteOffset: end, as: UInt8.self)
        base.storeBytes(of: 0x0A, toByteOffset: end &+ 1, as: UInt8.self)
        return end &+ 2
    }
}

/// Parses replies with hiredis's `redisReader`. Not thread-safe: one per connection, used on
/// that connection's event loop.
///
/// The reader records replies flat (`vitrine_replies`, see CHiredis/shim.h) rather than as
/// hiredis's reply objects: no allocation per reply, and one conversion to `RESPValue`.
public final class RESPDecoder {
    private let reader: UnsafeMutablePointer<redisReader>
    private let replies: UnsafeMutablePointer<vitrine_replies>

    public init() {
        replies = .allocate(capacity: 1)
        replies.initialize(to: vitrine_replies())
        reader = vitrine_reader_create(replies)
    }

    deinit {
        redisReaderFree(reader)
        vitrine_replies_free(replies)
        replies.deallocate()
    }

    /// Hands bytes to the reader.
    private func feed(_ buffer: ByteBuffer) throws {
        let status = buffer.withUnsafeReadableBytes { bytes in
            redisReaderFeed(reader, bytes.baseAddress?.assumingMemoryBound(to: CChar.self), bytes.count)
        }
        if status != REDIS_OK { throw RedisError.protocolError(errorText) }
    }

    /// Feeds `input` and hands every complete reply to `body`, in order.
    ///
    /// The bulk strings of all the replies in `input` are copied once, into one buffer, and
    /// handed out as slices of it: one allocation per read, not one per reply. (Writing each
    /// reply's bytes to a shared buffer after slicing the previous ones would copy the buffer
    /// each time: a slice shares its storage.)
    ///
    /// The input goes to hiredis a few kilobytes at a time: its reader moves the unread rest of
    /// its buffer down after each reply it hands out, so a large read fed at once costs a copy of
    /// the whole rest per reply (quadratic in the read's size).
    public func decode(_ input: ByteBuffer, _ body: (RESPValue) throws -> Void) throws {
        var input = input
        starts.removeAll(keepingCapacity: true)
        var failure: (any Error)?
        repeat {
            let chunk = input.readSlice(length: min(Self.feedChunk, input.readableBytes))!
            do {
                try feed(chunk)
                while let start = try nextStart() { starts.append(start) }
            } catch {
                failure = error
                break
            }
        } while input.readableBytes > 0
        let completeNodes = completedNodes
        let completeBytes = completedBytes
        if !starts.isEmpty {
            // The replies before a protocol error are still delivered, then the error.
            let strings = ByteBuffer(bytes: UnsafeRawBufferPointer(start: replies.pointee.bytes, count: completeBytes))
            defer { drop(nodes: completeNodes, bytes: completeBytes) }
            for start in starts {
                var index = start
                try body(convert(at: &index, strings: strings))
            }
        }
        if let failure {
            // The reader cannot go on after a protocol error: nothing it recorded is kept.
            drop(nodes: replies.pointee.count, bytes: replies.pointee.used)
            throw failure
        }
    }

    static let feedChunk = 8 << 10

    // The decoder is used from its connection's event loop only, and no access to these overlaps
    // another: not checked at run time (each check costs a thread-local lookup, per reply).

    /// Where each complete reply of the current read starts among the recorded nodes.
    @exclusivity(unchecked) private var starts: [Int] = []
    /// Nodes and string bytes of the complete replies recorded so far (what follows them belongs
    /// to a reply still arriving).
    @exclusivity(unchecked) private var completedNodes = 0
    @exclusivity(unchecked) private var completedBytes = 0

    /// Asks the reader for the next complete reply; returns the index of its first node. (A
    /// reply's nodes follow the previous reply's: hiredis finishes one before it starts the next.)
    private func nextStart() throws -> Int? {
        var reply: UnsafeMutableRawPointer?
        guard redisReaderGetReply(reader, &reply) == REDIS_OK else { throw RedisError.protocolError(errorText) }
        guard reply != nil else { return nil }
        let start = completedNodes
        completedNodes = replies.pointee.count
        completedBytes = replies.pointee.used
        return start
    }

    private func drop(nodes: Int, bytes: Int) {
        vitrine_replies_drop(replies, nodes, bytes)
        completedNodes = 0
        completedBytes = 0
    }

    private var errorText: String {
        withUnsafeBytes(of: reader.pointee.errstr) { raw in
            String(decoding: raw.prefix { $0 != 0 }, as: UTF8.self)
        }
    }

    /// The value recorded at `index` (and, for an array, its elements after it); bulk strings
    /// are slices of `strings`, the recorded string bytes.
    private func convert(at index: inout Int, strings: ByteBuffer) -> RESPValue {
        let node = replies.pointee.nodes[index]
        index += 1
        switch node.type {
        case REDIS_REPLY_STRING:
            return .bulkString(strings.getSlice(at: node.offset, length: node.length)!)
        case REDIS_REPLY_STATUS:
            return .simpleString(strings.getString(at: node.offset, length: node.length)!)
        case REDIS_REPLY_ERROR:
            return .error(strings.getString(at: node.offset, length: node.length)!)
        case REDIS_REPLY_INTEGER:
            return .integer(node.integer)
        case REDIS_REPLY_ARRAY:
            var elements: [RESPValue] = []
            elements.reserveCapacity(Int(node.elements))
            for _ in 0..<Int(node.elements) { elements.append(convert(at: &index, strings: strings)) }
            return .array(elements)
        default:
            return .null
        }
    }
}
