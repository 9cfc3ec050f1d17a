/// Builds compact JSON text with fields in the order written (stable ETags need stable bytes).
struct JSONWriter {
    private(set) var text = ""
    private var needsComma = [false]

    init(capacity: Int = 1024) {
        text.reserveCapacity(capacity)
    }

    mutating func beginObject(_ key: String? = nil) { open(key, "{") }
    mutating func endObject() { close("}") }
    mutating func beginArray(_ key: String? = nil) { open(key, "[") }
    mutating func endArray() { close("]") }

    mutating func field(_ key: String, _ value: String) {
        separator()
        appendKey(key)
        appendString(value)
    }

    mutating func field(_ key: String, _ value: Int) {
        separator()
        appendKey(key)
        text += String(value)
    }

    mutating func field(_ key: String, _ value: Double) {
        separator()
        appendKey(key)
        text += String(format2: value)
    }

    mutating func field(_ key: String, _ value: Bool) {
        separator()
        appendKey(key)
        text += value ? "true" : "false"
    }

    mutating func value(_ string: String) {
        separator()
        appendString(string)
    }

    /// Inserts already-encoded JSON as the next value.
    mutating func raw(_ json: String) {
        separator()
        text += json
    }

    private mutating func open(_ key: String?, _ bracket: String) {
        separator()
        if let key { appendKey(key) }
        text += bracket
        needsComma.append(false)
    }

    private mutating func close(_ bracket: String) {
        needsComma.removeLast()
        text += bracket
    }

    private mutating func separator() {
        if needsComma[needsComma.count - 1] { text += "," }
        needsComma[needsComma.count - 1] = true
    }

    private mutating func appendKey(_ key: String) {
        appendString(key)
        text += ":"
    }

    private mutating func appendString(_ value: String) {
        text += "\""
        for scalar in value.unicodeScalars {
            switch scalar {
            case "\"": text += "\\\""
            case "\\": text += "\\\\"
            case "\n": text += "\\n"
            case _ where scalar.value < 0x20: text += "\\u00" + (scalar.value < 16 ? "0" : "") + String(scalar.value, radix: 16)
            default: text.unicodeScalars.append(scalar)
            }
        }
        text += "\""
    }
}

extension String {
    /// Two decimals, without Foundation.
    init(format2 value: Double) {
        let hundredths = Int((value * 100).rounded())
        let fraction = abs(hundredths % 100)
        self = "\(hundredths / 100).\(fraction < 10 ? "0" : "")\(fraction)"
    }
}
