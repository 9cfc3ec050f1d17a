import Foundation
import VitrineCore
import VitrineFuzzDriver

/// libFuzzer's entry point. The target is chosen by `VITRINE_FUZZ_TARGET` (scripts/fuzz.sh sets
/// it), so that one instrumented binary serves every target: one build, not one per target.
@_cdecl("LLVMFuzzerTestOneInput")
public func fuzzOneInput(_ data: UnsafePointer<UInt8>?, _ size: Int) -> CInt {
    let bytes = data.map { Array(UnsafeBufferPointer(start: $0, count: size)) } ?? []
    FuzzTarget.selected.run(bytes)
    return 0
}

/// Every fuzz target: what it feeds the bytes to, and what must hold besides "does not trap".
enum FuzzTarget: String, CaseIterable {
    case requestDecoder = "request-decoder"
    case requestDifferential = "request-differential"
    case httpDate = "http-date"
    case cacheControl = "cache-control"
    case acceptEncodingVary = "accept-encoding-vary"
    case cacheKey = "cache-key"
    case tagHeaders = "tag-headers"
    case resp = "resp"
    case l2Entry = "l2-entry"
    case adminJSON = "admin-json"
    case feedCursor = "feed-cursor"
    case clientAddress = "client-address"
    case http2Request = "http2-request"

    static let selected: FuzzTarget = {
        let name = ProcessInfo.processInfo.environment["VITRINE_FUZZ_TARGET"] ?? ""
        guard let target = FuzzTarget(rawValue: name) else {
            let names = FuzzTarget.allCases.map(\.rawValue).joined(separator: ", ")
            fatalError("set VITRINE_FUZZ_TARGET to one of: \(names)")
        }
        return target
    }()

    func run(_ bytes: [UInt8]) {
        switch self {
        case .requestDecoder: RequestDecoderTarget.run(bytes)
        case .requestDifferential: RequestDifferentialTarget.run(bytes)
        case .httpDate: HTTPDateTarget.run(bytes)
        case .cacheControl: CacheControlTarget.run(bytes)
        case .acceptEncodingVary: AcceptEncodingVaryTarget.run(bytes)
        case .cacheKey: CacheKeyTarget.run(bytes)
        case .tagHeaders: TagHeadersTarget.run(bytes)
        case .resp: RESPTarget.run(bytes)
        case .l2Entry: L2EntryTarget.run(bytes)
        case .adminJSON: AdminJSONTarget.run(bytes)
        case .feedCursor: FeedCursorTarget.run(bytes)
        case .clientAddress: ClientAddressTarget.run(bytes)
        case .http2Request: HTTP2RequestTarget.run(bytes)
        }
    }
}

/// Header lines from fuzz input: `name: value` per line, as a decoder would hand them out (names
/// are tokens: a line whose name is not is dropped).
func fuzzHeaderLines(_ bytes: [UInt8]) -> [(name: String, value: String)] {
    String(decoding: bytes, as: UTF8.self).split(separator: "\n", omittingEmptySubsequences: true).prefix(64).compactMap { line in
        let colon = line.firstIndex(of: ":") ?? line.endIndex
        let name = line[..<colon]
        guard FieldSyntax.isToken(String(name)) else { return nil }
        let value = colon == line.endIndex ? "" : String(line[line.index(after: colon)...])
        return (String(name), value)
    }
}
