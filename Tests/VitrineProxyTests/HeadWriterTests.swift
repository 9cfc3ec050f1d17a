import NIOCore
import NIOHTTP1
import Testing
@testable import VitrineProxy

/// Heads written through one pointer: the same bytes as field by field, never past the end.
@Suite struct HeadWriterTests {
    @Test func aHeadIsWrittenAsTheFieldByFieldWritersWriteIt() {
        var expected = ByteBuffer()
        expected.writeStatusLine(.notFound)
        expected.writeHeader("Content-Type", "application/json")
        expected.writeHeader("Content-Length", decimal: 1_234_567)
        expected.writeHeader("Age", decimal: 0)
        var written = ByteBuffer()
        written.writeHead(capacity: 512) { head in
            head.statusLine(.notFound)
            head.header("Content-Type", "application/json")
            head.header("Content-Length", decimal: 1_234_567)
            head.header("Age", decimal: 0)
        }
        #expect(String(buffer: written) == String(buffer: expected))
        #expect(String(buffer: written).hasPrefix("HTTP/1.1 404 Not Found\r\nContent-Type: application/json\r\n"))
    }

    @Test func aHeadLongerThanItsGuessIsWrittenWholeNeverPastTheEnd() {
        let long = String(repeating: "x", count: 5_000)
        var written = ByteBuffer()
        var passes = 0
        written.writeHead(capacity: 16) { head in
            passes += 1
            head.statusLine(.ok)
            head.header("X-Long", long)
        }
        #expect(String(buffer: written) == "HTTP/1.1 200 OK\r\nX-Long: \(long)\r\n")
        #expect(passes > 1, "written again into more room")

        var bytes = [UInt8](repeating: 0, count: 8)
        bytes.withUnsafeMutableBytes { raw in
            var writer = HeadWriter(UnsafeMutableRawBufferPointer(rebasing: raw[..<4]))
            writer.put("HTTP/1.1")
            #expect(writer.overflowed)
            #expect(writer.count == 0)
        }
        #expect(bytes == [UInt8](repeating: 0, count: 8), "nothing written past the room it was given")
    }
}
