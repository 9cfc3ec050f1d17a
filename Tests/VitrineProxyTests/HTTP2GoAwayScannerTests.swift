import Testing
@testable import VitrineProxy

/// The scanner that tells `HTTP2ConnectionErrorCloser` a connection error's GOAWAY went out:
/// frames in any pieces, by their headers only.
struct HTTP2GoAwayScannerTests {
    static func frame(type: UInt8, payload: [UInt8]) -> [UInt8] {
        RawHTTP2Connection.frame(type: type, flags: 0, stream: 0, payload: payload)
    }

    static func goAway(code: UInt8) -> [UInt8] { frame(type: 0x7, payload: [0, 0, 0, 0, 0, 0, 0, code]) }

    /// Scans `bytes` in pieces of `size`: true when any piece said so.
    static func scan(_ bytes: [UInt8], pieces size: Int) -> Bool {
        var scanner = HTTP2GoAwayScanner()
        var found = false
        var start = 0
        while start < bytes.count {
            let end = min(start + size, bytes.count)
            found = Array(bytes[start..<end]).withUnsafeBytes { scanner.scan($0) } || found
            start = end
        }
        return found
    }

    @Test(arguments: [1, 2, 5, 9, 13, 1000])
    func aGoAwayWithAnErrorCodeIsFoundInAnyPieces(size: Int) {
        // DATA whose payload looks like a GOAWAY header, a SETTINGS, then the GOAWAY.
        let data = Self.frame(type: 0x0, payload: Self.goAway(code: 1) + Array(repeating: 0x07, count: 40))
        let settings = Self.frame(type: 0x4, payload: [])
        #expect(!Self.scan(data + settings, pieces: size))
        #expect(Self.scan(data + settings + Self.goAway(code: 0x9), pieces: size))
        #expect(!Self.scan(data + Self.goAway(code: 0), pieces: size), "a graceful GOAWAY (NO_ERROR) is not a connection error")
        // A GOAWAY with debug data after its code.
        #expect(Self.scan(Self.frame(type: 0x7, payload: [0, 0, 0, 3, 0, 0, 0, 0x1] + Array("bad".utf8)), pieces: size))
    }
}
