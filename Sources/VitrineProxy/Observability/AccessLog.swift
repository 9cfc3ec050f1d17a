import Foundation
import NIOCore
import NIOHTTP1
import Synchronization
import VitrineConfig
import VitrineCore

/// The access log: one line per answered request on standard output (or a sink a test gives),
/// as JSON or nginx's `combined` format. Lines are gathered and written in batches (at 64 KiB, or
/// at most a quarter of a second after the first), so that a peak does not cost a system call
/// per request. Sampling keeps a fraction of requests; every 5xx is kept.
package final class AccessLog: Sendable {
    let format: AccessLogFormat
    /// Keep one request in `1 / sample` (1: all).
    private let sampleThreshold: UInt64
    private let sink: @Sendable ([UInt8]) -> Void
    private let pending = Mutex<(lines: [UInt8], flushScheduled: Bool)>(([], false))
    private let sequence = Atomic<UInt64>(0)
    static let batchBytes = 64 * 1024

    package init(format: AccessLogFormat, sample: Double, sink: @escaping @Sendable ([UInt8]) -> Void = AccessLog.standardOutput) {
        self.format = format
        let clamped = min(max(sample, 0), 1)
        self.sampleThreshold = clamped >= 1 ? .max : UInt64(clamped * Double(UInt64.max >> 11)) << 11
        self.sink = sink
    }

    package static let standardOutput: @Sendable ([UInt8]) -> Void = { bytes in
        FileHandle.standardOutput.write(Data(bytes))
    }

    /// Whether this request is logged: every 5xx, and the sampled fraction of the rest (spread
    /// evenly by a multiplicative hash of a running count, not by chance).
    func keeps(status: Int) -> Bool {
        if status >= 500 || sampleThreshold == .max { return true }
        let count = sequence.wrappingAdd(1, ordering: .relaxed).newValue
        return count &* 0x9E37_79B9_7F4A_7C15 < sampleThreshold
    }

    /// Logs a request (unless sampled out), writing on `loop` when a batch is due.
    func record(_ record: RequestRecord, bytes: Int, finished: NIODeadline, on loop: any EventLoop) {
        guard keeps(status: record.status) else { return }
        var line: [UInt8] = []
        line.reserveCapacity(320)
        switch format {
        case .json: Self.writeJSON(record, bytes: bytes, finished: finished, into: &line)
        case .combined: Self.writeCombined(record, bytes: bytes, finished: finished, into: &line)
        }
        line.append(0x0A)
        let (batch, scheduleFlush) = pending.withLock { state -> ([UInt8]?, Bool) in
            state.lines += line
            if state.lines.count >= Self.batchBytes {
                defer { state.lines.removeAll(keepingCapacity: true) }
                return (state.lines, false)
            }
            if state.flushScheduled { return (nil, false) }
            state.flushScheduled = true
            return (nil, true)
        }
        if let batch { sink(batch) }
        if scheduleFlush {
            loop.scheduleTask(in: .milliseconds(250)) { self.flush() }
        }
    }

    /// Writes what is gathered.
    package func flush() {
        let batch = pending.withLock { state -> [UInt8] in
            state.flushScheduled = false
            defer { state.lines.removeAll(keepingCapacity: true) }
            return state.lines
        }
        if !batch.isEmpty { sink(batch) }
    }

    // MARK: Formats

    static func writeJSON(_ record: RequestRecord, bytes: Int, finished: NIODeadline, into line: inout [UInt8]) {
        let head = record.head
        /// `"name":`, after a comma unless it is the first.
        func key(_ name: StaticString, first: Bool) {
            if !first { line.append(UInt8(ascii: ",")) }
            line.append(UInt8(ascii: "\""))
            line.append(contentsOf: UnsafeRawBufferPointer(start: name.utf8Start, count: name.utf8CodeUnitCount))
            line += Array("\":".utf8)
        }
        func field(_ name: StaticString, _ value: String, first: Bool = false) {
            key(name, first: first)
            appendJSONString(value, to: &line)
        }
        func number(_ name: StaticString, _ value: String) {
            key(name, first: false)
            line += Array(value.utf8)
        }
        line.append(UInt8(ascii: "{"))
        field("time", timestamp(), first: true)
        field("client", record.forwarding.client)
        field("method", head.method.rawValue)
        field("target", head.uri)
        field("protocol", "HTTP/\(head.version.major).\(head.version.minor)")
        number("status", String(record.status))
        number("bytes", String(bytes))
        number("duration", seconds(finished - record.started))
        if let origin = record.originNanoseconds { number("origin_time", seconds(.nanoseconds(origin))) }
        field("cache", record.result.map { $0.rawValue.lowercased() } ?? "none")
        field("route", record.route)
        field("request_id", record.requestID)
        if let agent = head.headers.first(name: "user-agent") { field("user_agent", agent) }
        if let referer = head.headers.first(name: "referer") { field("referer", referer) }
        line.append(UInt8(ascii: "}"))
    }

    /// nginx's `combined`: `client - - [time] "request" status bytes "referer" "agent"`, then
    /// the cache result, the duration, the origin time and the request id, as nginx users add them.
    static func writeCombined(_ record: RequestRecord, bytes: Int, finished: NIODeadline, into line: inout [UInt8]) {
        let head = record.head
        func quoted(_ value: String) {
            line.append(UInt8(ascii: "\""))
            for byte in value.utf8 {
                // Escaped as nginx does: quotes, backslashes and control bytes as \xHH.
                if byte == UInt8(ascii: "\"") || byte == UInt8(ascii: "\\") || byte < 0x20 || byte >= 0x7F {
                    line += Array(String(format: "\\x%02X", byte).utf8)
                } else {
                    line.append(byte)
                }
            }
            line.append(UInt8(ascii: "\""))
        }
        line += Array("\(record.forwarding.client) - - [\(commonLogTime())] ".utf8)
        quoted("\(head.method.rawValue) \(head.uri) HTTP/\(head.version.major).\(head.version.minor)")
        line += Array(" \(record.status) \(bytes) ".utf8)
        quoted(head.headers.first(name: "referer") ?? "-")
        line.append(UInt8(ascii: " "))
        quoted(head.headers.first(name: "user-agent") ?? "-")
        let origin = record.originNanoseconds.map { seconds(.nanoseconds($0)) } ?? "-"
        let cache = record.result?.rawValue ?? "-"
        line += Array(" \(cache) \(seconds(finished - record.started)) \(origin) \(record.requestID) \(record.route)".utf8)
    }

    /// Seconds with millisecond precision, as nginx's `$request_time`.
    static func seconds(_ amount: TimeAmount) -> String {
        let milliseconds = max(amount.nanoseconds, 0) / 1_000_000
        let fraction = String(milliseconds % 1000)
        return "\(milliseconds / 1000)." + String(repeating: "0", count: 3 - fraction.count) + fraction
    }

    static func appendJSONString(_ value: String, to line: inout [UInt8]) {
        line.append(UInt8(ascii: "\""))
        line += Array(value.jsonEscaped.utf8)
        line.append(UInt8(ascii: "\""))
    }

    /// Now, in RFC 3339 with milliseconds (UTC).
    static func timestamp() -> String {
        var now = timespec()
        clock_gettime(CLOCK_REALTIME, &now)
        var time = tm()
        var seconds = now.tv_sec
        gmtime_r(&seconds, &time)
        return String(
            format: "%04d-%02d-%02dT%02d:%02d:%02d.%03dZ", Int(time.tm_year) + 1900, Int(time.tm_mon) + 1, Int(time.tm_mday),
            Int(time.tm_hour), Int(time.tm_min), Int(time.tm_sec), Int(now.tv_nsec / 1_000_000))
    }

    /// Now, as the common log format writes it: `10/Oct/2026:13:55:36 +0000`.
    static func commonLogTime() -> String {
        var seconds = time(nil)
        var time = tm()
        gmtime_r(&seconds, &time)
        let months = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"]
        let month = months[min(max(Int(time.tm_mon), 0), 11)]
        func two(_ value: Int32) -> String { value < 10 ? "0\(value)" : "\(value)" }
        return "\(two(time.tm_mday))/\(month)/\(Int(time.tm_year) + 1900):\(two(time.tm_hour)):\(two(time.tm_min)):\(two(time.tm_sec)) +0000"
    }
}
