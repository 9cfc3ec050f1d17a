/// Splits an SQL script into statements, so that a file such as `config/postgres/vitrine.sql`
/// can be run through the extended protocol, which takes one statement at a time. Knows what a
/// `;` inside a quoted string, a quoted identifier, a `$tag$` body or a comment is.
enum SQLScript {
    static func statements(_ script: String) -> [String] {
        let bytes = Array(script.utf8)
        var statements: [String] = []
        var start = 0
        var index = 0
        var hasCode = false

        func finish(at end: Int) {
            if hasCode {
                let text = String(decoding: bytes[start..<end], as: UTF8.self)
                statements.append(text.trimmingWhitespace)
            }
            start = end + 1
            hasCode = false
        }

        while index < bytes.count {
            let byte = bytes[index]
            switch byte {
            case UInt8(ascii: "-") where index + 1 < bytes.count && bytes[index + 1] == UInt8(ascii: "-"):
                while index < bytes.count && bytes[index] != UInt8(ascii: "\n") { index += 1 }
                continue
            case UInt8(ascii: "/") where index + 1 < bytes.count && bytes[index + 1] == UInt8(ascii: "*"):
                index += 2
                while index + 1 < bytes.count && !(bytes[index] == UInt8(ascii: "*") && bytes[index + 1] == UInt8(ascii: "/")) { index += 1 }
                index += 2
                continue
            case UInt8(ascii: "'"), UInt8(ascii: "\""):
                hasCode = true
                index += 1
                // A doubled quote is an escaped one: the scan leaves and re-enters the string.
                while index < bytes.count && bytes[index] != byte { index += 1 }
            case UInt8(ascii: "$"):
                hasCode = true
                var tagEnd = index + 1
                while tagEnd < bytes.count && (bytes[tagEnd].isIdentifierByte) { tagEnd += 1 }
                if tagEnd < bytes.count && bytes[tagEnd] == UInt8(ascii: "$") {
                    let tag = bytes[index...tagEnd]
                    var search = tagEnd + 1
                    while search + tag.count <= bytes.count && !bytes[search..<(search + tag.count)].elementsEqual(tag) { search += 1 }
                    index = min(search + tag.count, bytes.count)
                    continue
                }
            case UInt8(ascii: ";"):
                finish(at: index)
            case UInt8(ascii: " "), UInt8(ascii: "\n"), UInt8(ascii: "\t"), UInt8(ascii: "\r"):
                break
            default:
                hasCode = true
            }
            index += 1
        }
        finish(at: bytes.count)
        return statements
    }
}

extension UInt8 {
    fileprivate var isIdentifierByte: Bool {
        (UInt8(ascii: "a")...UInt8(ascii: "z")).contains(self) || (UInt8(ascii: "A")...UInt8(ascii: "Z")).contains(self)
            || (UInt8(ascii: "0")...UInt8(ascii: "9")).contains(self) || self == UInt8(ascii: "_")
    }
}

extension String {
    fileprivate var trimmingWhitespace: String {
        let isSpace: (Character) -> Bool = { $0 == " " || $0 == "\n" || $0 == "\t" || $0 == "\r" }
        return String(drop(while: isSpace).reversed().drop(while: isSpace).reversed())
    }
}
