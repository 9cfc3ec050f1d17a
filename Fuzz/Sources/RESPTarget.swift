import NIOCore
import VitrineRedis

/// Replies from Redis, through hiredis's reader: fed in pieces, as reads arrive.
enum RESPTarget {
    static func run(_ bytes: [UInt8]) {
        guard let first = bytes.first else { return }
        let input = bytes.dropFirst()
        let piece = Int(first) + 1
        let decoder = RESPDecoder()
        var offset = input.startIndex
        var replies = 0
        while offset < input.endIndex {
            let end = input.index(offset, offsetBy: piece, limitedBy: input.endIndex) ?? input.endIndex
            do {
                try decoder.decode(ByteBuffer(bytes: input[offset..<end])) { value in
                    replies += 1
                    walk(value)
                }
            } catch {
                return  // a protocol error: the connection is dropped
            }
            offset = end
        }
    }

    static func walk(_ value: RESPValue) {
        _ = value.string
        _ = value.integer
        _ = value.buffer
        if let elements = value.array { for element in elements { walk(element) } }
    }
}
