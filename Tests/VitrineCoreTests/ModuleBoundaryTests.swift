import Foundation
import Testing

/// What each module must not import (docs/ARCHITECTURE.md, "Modules"): read from the sources,
/// so that a dependency creeping in fails here, not in a review.
@Suite struct ModuleBoundaryTests {
    static let sources = URL(fileURLWithPath: #filePath)
        .deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()
        .appendingPathComponent("Sources")

    static let forbidden: [String: [String]] = [
        "VitrineCore": ["NIO", "Foundation", "Vitrine", "Logging", "PostgresNIO", "Yams"],
        "VitrineConfig": ["NIO", "VitrineProxy", "VitrineRedis", "VitrineFeed", "VitrineNode"],
        "VitrineDeadline": ["NIO", "Foundation", "Vitrine"],
        "VitrineRedis": ["Vitrine", "PostgresNIO"],
        "VitrineFeed": ["VitrineProxy", "VitrineRedis", "VitrineNode", "VitrineConfig"],
        "VitrineProxy": ["VitrineRedis", "VitrineFeed", "VitrineNode", "PostgresNIO", "CHiredis", "ServiceLifecycle"],
        "VitrineNode": ["VitrineDemoOrigin"],
        "VitrineDemoOrigin": ["VitrineCore", "VitrineProxy", "VitrineConfig", "VitrineRedis", "VitrineFeed", "VitrineNode"],
    ]

    static func imports(of module: String) throws -> [(file: String, module: String)] {
        let directory = sources.appendingPathComponent(module)
        let files = FileManager.default.enumerator(atPath: directory.path)?.compactMap { $0 as? String }.filter { $0.hasSuffix(".swift") } ?? []
        var found: [(String, String)] = []
        for file in files {
            let text = try String(contentsOf: directory.appendingPathComponent(file), encoding: .utf8)
            for line in text.split(separator: "\n") {
                let words = line.split(separator: " ")
                guard let index = words.firstIndex(of: "import"), words[..<index].allSatisfy({ $0.hasPrefix("@") }),
                    index + 1 < words.count
                else { continue }
                found.append((file, String(words[index + 1])))
            }
        }
        return found
    }

    @Test(arguments: forbidden.keys.sorted())
    func aModuleImportsNothingItMustNot(_ module: String) throws {
        let imports = try Self.imports(of: module)
        #expect(!imports.isEmpty, "\(module) has sources")
        for (file, imported) in imports {
            for prefix in Self.forbidden[module] ?? [] where imported.hasPrefix(prefix) && imported != module {
                Issue.record("\(module)/\(file) imports \(imported)")
            }
        }
    }
}
