/// Which responses are worth storing gzip-compressed: text-like media types, not already
/// content-coded, not too small to gain.
public enum Compressibility {
    /// Below this many bytes gzip's header and the CPU are not worth it.
    public static let minimumSize = 1024

    public static func isCompressible(contentType: String?, contentEncoding: String?, size: Int) -> Bool {
        guard size >= minimumSize else { return false }
        if let contentEncoding, !contentEncoding.isEmpty, contentEncoding.lowercased() != "identity" { return false }
        guard let contentType else { return false }
        let mediaType = contentType[...].prefix { $0 != ";" }.trimmingSpaces().lowercased()
        if mediaType.hasPrefix("text/") { return true }
        return ["application/json", "application/javascript", "application/xml", "image/svg+xml", "application/x-ndjson"]
            .contains(mediaType) || mediaType.hasSuffix("+json") || mediaType.hasSuffix("+xml")
    }
}
