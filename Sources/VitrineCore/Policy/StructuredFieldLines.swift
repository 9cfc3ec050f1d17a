import RawStructuredFieldValues

/// A Structured Field (RFC 8941) sent on one or more lines, parsed with
/// swift-http-structured-headers: the lines are combined with commas first (§4.2), as lists and
/// dictionaries may be split across lines. Nil when the combined value does not parse.
enum StructuredFieldLines {
    static func list<Values: Sequence<String>>(_ values: Values) -> [ItemOrInnerList]? {
        let joined = values.joined(separator: ", ")
        // Most responses carry no such field: an empty list, without a parser.
        guard !joined.isEmpty else { return [] }
        var parser = StructuredFieldValueParser(Array(joined.utf8))
        return try? parser.parseListFieldValue()
    }

    static func dictionary<Values: Sequence<String>>(_ values: Values) -> OrderedMap<String, ItemOrInnerList>? {
        var parser = StructuredFieldValueParser(Array(values.joined(separator: ", ").utf8))
        return try? parser.parseDictionaryFieldValue()
    }
}
