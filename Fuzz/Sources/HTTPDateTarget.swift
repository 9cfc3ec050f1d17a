import VitrineCore

/// HTTP dates from clients (`If-Modified-Since`) and origins (`Date`, `Expires`,
/// `Last-Modified`): a date that parses formats back to itself.
enum HTTPDateTarget {
    static func run(_ bytes: [UInt8]) {
        let text = String(decoding: bytes, as: UTF8.self)
        guard let seconds = HTTPDate.parse(text) else { return }
        precondition(seconds >= 0 && seconds <= 253_402_300_799, "a date outside 1970-9999: \(seconds)")
        let formatted = HTTPDate.format(seconds)
        precondition(HTTPDate.parse(formatted) == seconds, "\(text) → \(seconds) → \(formatted) does not read back")
    }
}
