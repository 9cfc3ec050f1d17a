import CHiredis
import NIOCore

/// Encodes commands with hiredis's `redisFormatCommandArgv`.
public enum RESPEncoder {
    /// Appends the RESP encoding of `arguments` to `buffer`. The argument bytes, pointers and
    /// lengths hiredis wants live in temporary (stack, when small) storage: no Swift allocation.
    public static func encode(_ arguments: [RESPArgument], into buffer: inout ByteBuffer) {
        let count = arguments.count
        let total = arguments.reduce(0) { $0 + $1.byteCount }
        withUnsafeTemporaryAllocation(of: UInt8.self, capacity: max(total, 1)) { storage in
            withUnsafeTemporaryAllocation(of: Int.self, capacity: count) { lengths in
                withUnsafeTemporaryAllocation(of: UnsafePointer<CChar>?.self, capacity: count) { pointers in
                    var offset = 0
                    for (index, argument) in arguments.enumerated() {
                        let destination = UnsafeMutableRawBufferPointer(rebasing: UnsafeMutableRawBufferPointer(storage)[offset...])
                        let length: Int
                        switch argument {
                        case .string(var text):
                            length = text.withUTF8 { source in
                                destination.copyMemory(from: UnsafeRawBufferPointer(source))
                                return source.count
                            }
                        case .bytes(let bytes):
                            length = bytes.withUnsafeReadableBytes { source in
                                destination.copyMemory(from: source)
                                return source.count
                            }
                        }
                        lengths[index] = length
                        pointers[index] = UnsafeRawPointer(storage.baseAddress! + offset).assumingMemoryBound(to: CChar.self)
                        offset += length
                    }
                    var target: UnsafeMutablePointer<CChar>?
                    let written = redisFormatCommandArgv(&target, Int32(count), pointers.baseAddress, lengths.baseAddress)
                    guard let target, written > 0 else { return }
                    buffer.writeBytes(UnsafeRawBufferPointer(start: target, count: Int(written)))
                    redisFreeCommand(target)
                }
            }
        }
    }
}

/// Parses replies with hiredis's `redisReader`. Not thread-safe: one per connection, used on
/// that connection's event loop.
public final class RESPDecoder {
    private let reader: UnsafeMutablePointer<redisReader>

    public init() {
        reader = redisReaderCreate()
    }

    deinit {
        redisReaderFree(reader)
    }

    /// Hands bytes to the reader.
    public func feed(_ buffer: ByteBuffer) throws {
        let status = buffer.withUnsafeReadableBytes { bytes in
            redisReaderFeed(reader, bytes.baseAddress?.assumingMemoryBound(to: CChar.self), bytes.count)
        }
        if status != REDIS_OK { throw RedisError.protocolError(errorText) }
    }

    /// Feeds `input` and hands every complete reply to `body`, bulk strings sliced from `arena`.
    ///
    /// The input goes to hiredis a few kilobytes at a time: its reader moves the unread rest of
    /// its buffer down after each reply it hands out, so a large read fed at once costs a copy of
    /// the whole rest per reply (quadratic in the read's size).
    public func decode(_ input: ByteBuffer, arena: inout ByteBuffer, _ body: (RESPValue) throws -> Void) throws {
        var input = input
        repeat {
            let chunk = input.readSlice(length: min(Self.feedChunk, input.readableBytes))!
            try feed(chunk)
            while let reply = try next(arena: &arena) { try body(reply) }
        } while input.readableBytes > 0
    }

    static let feedChunk = 8 << 10

    /// The next complete reply, or nil until more bytes arrive.
    public func next() throws -> RESPValue? {
        var arena = ByteBuffer()
        return try next(arena: &arena)
    }

    /// The next complete reply, its bulk strings written to `arena` and returned as slices of it.
    public func next(arena: inout ByteBuffer) throws -> RESPValue? {
        var reply: UnsafeMutableRawPointer?
        guard redisReaderGetReply(reader, &reply) == REDIS_OK else { throw RedisError.protocolError(errorText) }
        guard let reply else { return nil }
        defer { freeReplyObject(reply) }
        return Self.convert(reply.assumingMemoryBound(to: redisReply.self), arena: &arena)
    }

    private var errorText: String {
        withUnsafeBytes(of: reader.pointee.errstr) { raw in
            String(decoding: raw.prefix { $0 != 0 }, as: UTF8.self)
        }
    }

    private static func convert(_ reply: UnsafeMutablePointer<redisReply>, arena: inout ByteBuffer) -> RESPValue {
        let value = reply.pointee
        switch value.type {
        case REDIS_REPLY_STRING:
            let start = arena.writerIndex
            let length = arena.writeBytes(UnsafeRawBufferPointer(start: value.str, count: Int(value.len)))
            return .bulkString(arena.getSlice(at: start, length: length)!)
        case REDIS_REPLY_STATUS:
            return .simpleString(text(value))
        case REDIS_REPLY_ERROR:
            return .error(text(value))
        case REDIS_REPLY_INTEGER:
            return .integer(value.integer)
        case REDIS_REPLY_ARRAY:
            var elements: [RESPValue] = []
            elements.reserveCapacity(Int(value.elements))
            for index in 0..<Int(value.elements) { elements.append(convert(value.element[index]!, arena: &arena)) }
            return .array(elements)
        default:
            return .null
        }
    }

    private static func text(_ value: redisReply) -> String {
        String(decoding: UnsafeRawBufferPointer(start: value.str, count: Int(value.len)), as: UTF8.self)
    }
}
