import NIOCore
import NIOHTTP1
import Testing
import VitrineConfig
@testable import VitrineProxy

/// Request framing as a plain value: bytes in, parts out.
@Suite struct RequestDecoderTests {
    /// What a decoder made of `chunks` (fed one after the other): each part as text, and the
    /// error it stopped with, if any.
    static func decode(_ chunks: [String], limits: LimitSettings = LimitSettings()) -> (parts: [String], error: ProxyError?) {
        var decoder = RequestDecoder(limits: limits)
        var parts: [String] = []
        do {
            for chunk in chunks {
                decoder.append(ByteBuffer(string: chunk))
                while let part = try decoder.next() {
                    switch part {
                    case .head(let head):
                        let fields = head.headers.map { "\($0.name)=\($0.value)" }.joined(separator: ",")
                        parts.append("\(head.method.rawValue) \(head.uri) 1.\(head.version.minor) [\(fields)]")
                    case .body(let body):
                        // Consecutive body parts are one body, however the bytes arrived.
                        if let last = parts.last, last.hasPrefix("body:") {
                            parts[parts.count - 1] = last + String(buffer: body)
                        } else {
                            parts.append("body:" + String(buffer: body))
                        }
                    case .end:
                        parts.append("end")
                    }
                }
            }
        } catch {
            // A failed decoder yields nothing more, whatever arrives.
            decoder.append(ByteBuffer(string: "GET / HTTP/1.1\r\nHost: x\r\n\r\n"))
            #expect((try? decoder.next()) == nil)
            return (parts, error)
        }
        return (parts, nil)
    }

    /// The same bytes, one at a time.
    static func decodeBytewise(_ text: String) -> (parts: [String], error: ProxyError?) {
        decode(text.utf8.map { String(decoding: [$0], as: UTF8.self) })
    }

    @Test func getHeadAndEnd() {
        let result = Self.decode(["GET /catalog/products/1?a=b HTTP/1.1\r\nHost: x\r\nAccept:  application/json \r\n\r\n"])
        #expect(result.error == nil)
        #expect(result.parts == ["GET /catalog/products/1?a=b 1.1 [Host=x,Accept=application/json]", "end"])
    }

    @Test func pipelinedRequestsInOneRead() {
        let result = Self.decode(["GET /a HTTP/1.1\r\nHost: x\r\n\r\nHEAD /b HTTP/1.0\r\n\r\nGET /c HTTP/1.1\r\nHost: x\r\n\r\n"])
        #expect(result.parts == ["GET /a 1.1 [Host=x]", "end", "HEAD /b 1.0 []", "end", "GET /c 1.1 [Host=x]", "end"])
    }

    @Test func lengthBodyArrivingAByteAtATime() {
        let text = "POST /catalog/products/1 HTTP/1.1\r\nHost: x\r\nContent-Length: 11\r\n\r\nhello worldGET /next HTTP/1.1\r\nHost: x\r\n\r\n"
        let result = Self.decodeBytewise(text)
        #expect(result.error == nil)
        #expect(
            result.parts == [
                "POST /catalog/products/1 1.1 [Host=x,Content-Length=11]", "body:hello world", "end", "GET /next 1.1 [Host=x]", "end",
            ])
    }

    @Test func chunkedBodyWithExtensionsAndTrailers() {
        let text =
            "PATCH /p HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: Chunked\r\n\r\n"
            + "5;name=value\r\nhello\r\n6 ; x\r\n world\r\nA\r\n0123456789\r\n0\r\nX-Trailer: t\r\n\r\n"
            + "GET /next HTTP/1.1\r\nHost: x\r\n\r\n"
        for result in [Self.decode([text]), Self.decodeBytewise(text)] {
            #expect(result.error == nil)
            #expect(
                result.parts == [
                    "PATCH /p 1.1 [Host=x,Transfer-Encoding=Chunked]", "body:hello world0123456789", "end", "GET /next 1.1 [Host=x]", "end",
                ])
        }
    }

    @Test func emptyLinesBeforeARequestAreIgnored() {
        let result = Self.decode(["\r\n\r\nGET /a HTTP/1.1\r\nHost: x\r\n\r\n"])
        #expect(result.parts == ["GET /a 1.1 [Host=x]", "end"])
    }

    @Test(arguments: [
        // Ambiguous or invalid framing.
        ("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nTransfer-Encoding: chunked\r\n\r\n", 400),
        ("POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nContent-Length: 3\r\n\r\n", 400),
        ("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 3\r\nContent-Length: 3\r\n\r\nabc", 400),
        ("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 3, 3\r\n\r\nabc", 400),
        ("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: +3\r\n\r\nabc", 400),
        ("POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 99999999999999999999\r\n\r\n", 400),
        ("POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: gzip, chunked\r\n\r\n", 501),
        ("POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\nTransfer-Encoding: chunked\r\n\r\n", 501),
        ("POST / HTTP/1.0\r\nTransfer-Encoding: chunked\r\n\r\n0\r\n\r\n", 400),
        // Malformed lines.
        ("GET / HTTP/1.1\nHost: x\n\n", 400),
        ("GET / HTTP/1.1\r\nHost: x\nX: y\r\n\r\n", 400),
        ("GET / HTTP/1.1\r\nHost: x\rX: y\r\n\r\n", 400),
        ("GET / HTTP/1.1\r\nHost: x\r\nX-Folded: a\r\n b\r\n\r\n", 400),
        ("GET / HTTP/1.1\r\nHost : x\r\n\r\n", 400),
        ("GET / HTTP/1.1\r\n: x\r\n\r\n", 400),
        ("GET / HTTP/1.1\r\nHost: x\u{0}y\r\n\r\n", 400),
        ("GET / HTTP/1.1\r\nNoColon\r\n\r\n", 400),
        ("GET /caf\u{e9} HTTP/1.1\r\nHost: x\r\n\r\n", 400),
        ("GET  / HTTP/1.1\r\nHost: x\r\n\r\n", 400),
        ("GET / HTTP/1.1 \r\nHost: x\r\n\r\n", 400),
        ("GET / http/1.1\r\nHost: x\r\n\r\n", 400),
        ("G(T / HTTP/1.1\r\nHost: x\r\n\r\n", 400),
        ("GET / HTTP/2.0\r\nHost: x\r\n\r\n", 505),
        ("GET / HTTP/0.9\r\nHost: x\r\n\r\n", 505),
        // What a reverse proxy does not serve.
        ("GET / HTTP/1.1\r\n\r\n", 400),
        ("GET / HTTP/1.1\r\nHost: x\r\nhost: y\r\n\r\n", 400),
        ("GET http://x/ HTTP/1.1\r\nHost: x\r\n\r\n", 400),
        ("CONNECT x:443 HTTP/1.1\r\nHost: x:443\r\n\r\n", 400),
        ("OPTIONS * HTTP/1.1\r\nHost: x\r\n\r\n", 400),
        // Chunked bodies.
        ("POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", 400),
        ("POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n;ext\r\n", 400),
        ("POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n1000000000000000\r\n", 400),
        ("POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n3\r\nabcX\r\n", 400),
        ("POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n3\nabc\r\n", 400),
    ])
    func malformedRequestsAreRefused(_ text: String, _ status: Int) {
        for result in [Self.decode([text]), Self.decodeBytewise(text)] {
            #expect(result.error.map { Int($0.status.code) } == status, "\(text.debugDescription)")
            #expect(result.error?.closesConnection == true)
        }
    }

    @Test func limitsAreEnforcedBeforeTheHeadIsComplete() {
        var limits = LimitSettings()
        limits.maxRequestLine = 100
        limits.maxHeaderBytes = 200
        limits.maxHeaders = 3
        // A request line that never ends is refused once it passes the limit.
        let longLine = Self.decode(["GET /" + String(repeating: "a", count: 150)], limits: limits)
        #expect(longLine.error?.status == .uriTooLong)
        // So are fields that never end.
        let longFields = Self.decode(["GET / HTTP/1.1\r\nX: " + String(repeating: "a", count: 300)], limits: limits)
        #expect(longFields.error?.status == .requestHeaderFieldsTooLarge)
        // And complete heads over the limits.
        let target = Self.decode(["GET /" + String(repeating: "a", count: 150) + " HTTP/1.1\r\nHost: x\r\n\r\n"], limits: limits)
        #expect(target.error?.status == .uriTooLong)
        let tooMany = Self.decode(["GET / HTTP/1.1\r\nHost: x\r\nB: 2\r\nC: 3\r\nD: 4\r\n\r\n"], limits: limits)
        #expect(tooMany.error?.status == .requestHeaderFieldsTooLarge)
        let enough = Self.decode(["GET / HTTP/1.1\r\nHost: x\r\nB: 2\r\nC: 3\r\n\r\n"], limits: limits)
        #expect(enough.error == nil)
        // A declared body over the limit is refused before any of it is read.
        limits.maxBody = ByteSize(1000)
        let body = Self.decode(["POST / HTTP/1.1\r\nHost: x\r\nContent-Length: 1001\r\n\r\n"], limits: limits)
        #expect(body.error?.status == .payloadTooLarge)
        // Trailers count against the header limit too.
        let trailers = Self.decode(
            ["POST / HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n0\r\nX: " + String(repeating: "a", count: 300) + "\r\n\r\n"],
            limits: limits)
        #expect(trailers.error?.status == .requestHeaderFieldsTooLarge)
    }

    @Test func aHeadArrivingAByteAtATimeIsScannedOnce() {
        // 30,000 bytes of fields, one byte per read: rescanning from the start on every byte
        // would be 450 million byte comparisons; this test would take minutes.
        let fields = (0..<1000).map { "X-Field-\($0): \(String(repeating: "v", count: 14))\r\n" }.joined()
        var limits = LimitSettings()
        limits.maxHeaders = 1001
        var decoder = RequestDecoder(limits: limits)
        var heads = 0
        for byte in ("GET / HTTP/1.1\r\nHost: x\r\n" + fields + "\r\n").utf8 {
            var buffer = ByteBuffer()
            buffer.writeInteger(byte)
            decoder.append(buffer)
            while let part = try? decoder.next() {
                if case .head(let head) = part {
                    heads += 1
                    #expect(head.headers.count == 1001)
                }
            }
        }
        #expect(heads == 1)
    }
}
