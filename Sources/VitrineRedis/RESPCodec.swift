import CHiredis
import NIOCore

/// Encodes commands with hiredis's `redisFormatCommandArgv`.
enum RESPEncoder {
    /// Appends the RESP encoding of `arguments` to `buffer`.
    static func encode(_ arguments: [RESPArgument], into buffer: inout ByteBuffer) {
        // hiredis wants one pointer and one length per argument: lay the bytes out contiguously.
        var storage: [UInt8] = []
        storage.reserveCapacity(arguments.reduce(0) { $0 + $1.byteCount })
        var lengths: [Int] = []
        lengths.reserveCapacity(arguments.count)
        for argument in arguments {
            switch argument {
            case .string(let text): storage.append(contentsOf: text.utf8)
            case .bytes(let bytes): storage.append(contentsOf: bytes.readableBytesView)
            }
            lengths.append(argument.byteCount)
        }
        storage.withUnsafeBufferPointer { base in
            let start = UnsafeRawPointer(base.baseAddress ?? UnsafePointer(bitPattern: 1)!)
            var offset = 0
            var pointers: [UnsafePointer<CChar>?] = []
            pointers.reserveCapacity(lengths.count)
            for length in lengths {
                pointers.append((start + offset).assumingMemoryBound(to: CChar.self))
                offset += length
            }
            var target: UnsafeMutablePointer<CChar>?
            let count = pointers.withUnsafeMutableBufferPointer { argv in
                lengths.withUnsafeBufferPointer { argvlen in
                    redisFormatCommandArgv(&target, Int32(arguments.count), argv.baseAddress, argvlen.baseAddress)
                }
            }
            guard let target, count > 0 else { return }
            buffer.writeBytes(UnsafeRawBufferPointer(start: target, count: Int(count)))
            redisFreeCommand(target)
        }
    }
}

/// Parses replies with hiredis's `redisReader`. Not thread-safe: one per connection, used on
/// that connection's event loop.
final class RESPDecoder {
    private let reader: UnsafeMutablePointer<redisReader>

    init() {
        reader = redisReaderCreate()
    }

    deinit {
        redisReaderFree(reader)
    }

    /// Hands bytes to the reader.
    func feed(_ buffer: ByteBuffer) throws {
        let status = buffer.withUnsafeReadableBytes { bytes in
            redisReaderFeed(reader, bytes.baseAddress?.assumingMemoryBound(to: CChar.self), bytes.count)
        }
        if status != REDIS_OK { throw RedisError.protocolError(errorText) }
    }

    /// The next complete reply, or nil until more bytes arrive.
    func next() throws -> RESPValue? {
        var reply: UnsafeMutableRawPointer?
        guard redisReaderGetReply(reader, &reply) == REDIS_OK else { throw RedisError.protocolError(errorText) }
        guard let reply else { return nil }
        defer { freeReplyObject(reply) }
        return Self.convert(reply.assumingMemoryBound(to: redisReply.self))
    }

    private var errorText: String {
        withUnsafeBytes(of: reader.pointee.errstr) { raw in
            String(decoding: raw.prefix { $0 != 0 }, as: UTF8.self)
        }
    }

    private static func convert(_ reply: UnsafeMutablePointer<redisReply>) -> RESPValue {
        let value = reply.pointee
        switch value.type {
        case REDIS_REPLY_STRING:
            var buffer = ByteBuffer()
            buffer.writeBytes(UnsafeRawBufferPointer(start: value.str, count: Int(value.len)))
            return .bulkString(buffer)
        case REDIS_REPLY_STATUS:
            return .simpleString(text(value))
        case REDIS_REPLY_ERROR:
            return .error(text(value))
        case REDIS_REPLY_INTEGER:
            return .integer(value.integer)
        case REDIS_REPLY_ARRAY:
            return .array((0..<Int(value.elements)).map { convert(value.element[$0]!) })
        default:
            return .null
        }
    }

    private static func text(_ value: redisReply) -> String {
        String(decoding: UnsafeRawBufferPointer(start: value.str, count: Int(value.len)), as: UTF8.self)
    }
}
