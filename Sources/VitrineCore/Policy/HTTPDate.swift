/// HTTP dates (RFC 9110 §5.6.7) as seconds since the Unix epoch: IMF-fixdate
/// (`Sun, 06 Nov 1994 08:49:37 GMT`) and, as recipients must, the obsolete RFC 850
/// (`Sunday, 06-Nov-94 08:49:37 GMT`) and asctime (`Sun Nov  6 08:49:37 1994`) forms.
public enum HTTPDate {
    private static let months = ["jan", "feb", "mar", "apr", "may", "jun", "jul", "aug", "sep", "oct", "nov", "dec"]

    private static let dayNames = ["mon", "tue", "wed", "thu", "fri", "sat", "sun"]
    private static let longDayNames = ["monday", "tuesday", "wednesday", "thursday", "friday", "saturday", "sunday"]

    /// Seconds since 1970-01-01T00:00:00Z, or nil when `text` is not an HTTP date.
    ///
    /// The grammar is followed to the byte (RFC 9110 §5.6.7): single spaces where it has them,
    /// two-digit day, hour, minute and second, a four-digit year (two in RFC 850 dates), `GMT`
    /// and nothing else. Letters may be in any case. Anything else is not a date, and an
    /// `Expires` that is not a date means "already expired" (RFC 9111 §5.3): a lenient reading
    /// could turn a malformed value into a date in the future. Years are 1970 to 9999, so that
    /// no arithmetic on what a client or an origin sent can overflow.
    public static func parse<Text: StringProtocol>(_ text: Text) -> Int? {
        var bytes = Array(text.utf8)
        while let last = bytes.last, last == 0x20 || last == 0x09 { bytes.removeLast() }
        while let first = bytes.first, first == 0x20 || first == 0x09 { bytes.removeFirst() }
        if bytes.count == 29, bytes[3] == UInt8(ascii: ",") {
            // IMF-fixdate: Sun, 06 Nov 1994 08:49:37 GMT
            guard name(bytes[0..<3], in: dayNames) != nil, bytes[4] == 0x20, bytes[7] == 0x20, bytes[11] == 0x20,
                bytes[16] == 0x20, bytes[25] == 0x20, lowercased(bytes[26..<29]) == "gmt"
            else { return nil }
            return make(day: digits(bytes[5..<7]), month: name(bytes[8..<11], in: months), year: digits(bytes[12..<16]), time: bytes[17..<25])
        }
        if bytes.count == 24, bytes[3] == 0x20 {
            // asctime: Sun Nov  6 08:49:37 1994
            guard name(bytes[0..<3], in: dayNames) != nil, bytes[7] == 0x20, bytes[10] == 0x20, bytes[19] == 0x20 else { return nil }
            let day = bytes[8] == 0x20 ? digits(bytes[9..<10]) : digits(bytes[8..<10])
            return make(day: day, month: name(bytes[4..<7], in: months), year: digits(bytes[20..<24]), time: bytes[11..<19])
        }
        // RFC 850: Sunday, 06-Nov-94 08:49:37 GMT
        guard let comma = bytes.firstIndex(of: UInt8(ascii: ",")), name(bytes[0..<comma], in: longDayNames) != nil,
            bytes.count == comma + 24, bytes[comma + 1] == 0x20, bytes[comma + 4] == UInt8(ascii: "-"),
            bytes[comma + 8] == UInt8(ascii: "-"), bytes[comma + 11] == 0x20, bytes[comma + 20] == 0x20,
            lowercased(bytes[(comma + 21)...]) == "gmt", let shortYear = digits(bytes[(comma + 9)..<(comma + 11)])
        else { return nil }
        // Two-digit years: the RFC's rule is "more than 50 years in the future is the past";
        // as the years from 1970 on are all this cache represents, 70-99 are 19xx, the rest 20xx.
        let year = shortYear + (shortYear < 70 ? 2000 : 1900)
        return make(
            day: digits(bytes[(comma + 2)..<(comma + 4)]), month: name(bytes[(comma + 5)..<(comma + 8)], in: months), year: year,
            time: bytes[(comma + 12)..<(comma + 20)])
    }

    private static func lowercased(_ bytes: ArraySlice<UInt8>) -> String {
        String(decoding: bytes.map { $0 >= 0x41 && $0 <= 0x5A ? $0 | 0x20 : $0 }, as: UTF8.self)
    }

    /// The index of `bytes` (any case) in `names`.
    private static func name(_ bytes: ArraySlice<UInt8>, in names: [String]) -> Int? {
        names.firstIndex(of: lowercased(bytes))
    }

    /// Decimal digits only, as many as given.
    private static func digits(_ bytes: ArraySlice<UInt8>) -> Int? {
        guard !bytes.isEmpty else { return nil }
        var value = 0
        for byte in bytes {
            guard byte >= UInt8(ascii: "0"), byte <= UInt8(ascii: "9") else { return nil }
            value = value * 10 + Int(byte - UInt8(ascii: "0"))
        }
        return value
    }

    /// `HH:MM:SS`, two digits each.
    private static func make(day: Int?, month monthIndex: Int?, year: Int?, time: ArraySlice<UInt8>) -> Int? {
        guard let day, let monthIndex, let year, (1970...9999).contains(year), (1...daysIn(month: monthIndex + 1, year: year)).contains(day),
            time.count == 8, time[time.startIndex + 2] == UInt8(ascii: ":"), time[time.startIndex + 5] == UInt8(ascii: ":"),
            let hour = digits(time[time.startIndex..<(time.startIndex + 2)]),
            let minute = digits(time[(time.startIndex + 3)..<(time.startIndex + 5)]),
            let second = digits(time[(time.startIndex + 6)..<(time.startIndex + 8)]),
            hour <= 23, minute <= 59, second <= 60
        else { return nil }
        // A leap second (:60) is read as :59: the date stays the one it names (never the next
        // day, never past 9999), and formats back to a valid date.
        return daysSinceEpoch(year: year, month: monthIndex + 1, day: day) * 86_400 + hour * 3600 + minute * 60 + min(second, 59)
    }

    /// Days in a month of the Gregorian calendar: `31 Feb` is not a date.
    static func daysIn(month: Int, year: Int) -> Int {
        switch month {
        case 2: return year % 4 == 0 && (year % 100 != 0 || year % 400 == 0) ? 29 : 28
        case 4, 6, 9, 11: return 30
        default: return 31
        }
    }

    /// Days from 1970-01-01 to the civil date (Howard Hinnant's algorithm).
    static func daysSinceEpoch(year: Int, month: Int, day: Int) -> Int {
        let y = month <= 2 ? year - 1 : year
        let era = (y >= 0 ? y : y - 399) / 400
        let yearOfEra = y - era * 400
        let dayOfYear = (153 * (month + (month > 2 ? -3 : 9)) + 2) / 5 + day - 1
        let dayOfEra = yearOfEra * 365 + yearOfEra / 4 - yearOfEra / 100 + dayOfYear
        return era * 146_097 + dayOfEra - 719_468
    }

    /// IMF-fixdate for `seconds` since the epoch.
    public static func format(_ seconds: Int) -> String {
        let days = seconds >= 0 ? seconds / 86_400 : (seconds - 86_399) / 86_400
        let secondOfDay = seconds - days * 86_400
        // Civil from days (Hinnant).
        let z = days + 719_468
        let era = (z >= 0 ? z : z - 146_096) / 146_097
        let dayOfEra = z - era * 146_097
        let yearOfEra = (dayOfEra - dayOfEra / 1460 + dayOfEra / 36_524 - dayOfEra / 146_096) / 365
        let dayOfYear = dayOfEra - (365 * yearOfEra + yearOfEra / 4 - yearOfEra / 100)
        let mp = (5 * dayOfYear + 2) / 153
        let day = dayOfYear - (153 * mp + 2) / 5 + 1
        let month = mp < 10 ? mp + 3 : mp - 9
        let year = yearOfEra + era * 400 + (month <= 2 ? 1 : 0)
        let weekday = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"][((days % 7) + 7) % 7]
        func two(_ value: Int) -> String { value < 10 ? "0\(value)" : "\(value)" }
        let monthName = ["Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec"][month - 1]
        return "\(weekday), \(two(day)) \(monthName) \(year) \(two(secondOfDay / 3600)):\(two(secondOfDay % 3600 / 60)):\(two(secondOfDay % 60)) GMT"
    }
}
