import VitrineCore

/// Request targets into cache keys: normalising twice is normalising once (what the origin is
/// sent is the key's target, so a second pass must not move anything).
enum CacheKeyTarget {
    static let normalizer = CacheKeyNormalizer()

    static func run(_ bytes: [UInt8]) {
        let target = "/" + String(decoding: bytes, as: UTF8.self)
        let once = normalizer.normalizedTarget(target)
        let twice = normalizer.normalizedTarget(once)
        precondition(once == twice, "not idempotent: \(target) → \(once) → \(twice)")
        _ = normalizer.key(target: target, host: String(decoding: bytes.prefix(16), as: UTF8.self))
        _ = CacheKeyNormalizer.normalizedHost(String(decoding: bytes, as: UTF8.self))
    }
}
