import ArgumentParser
import Foundation
import VitrineNode

/// `vitrine purge`: a purge through a node's admin API, without curl and a pasted token.
struct Purge: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Purge by tag, key or prefix through a node's admin API (the token from $VITRINE_ADMIN_TOKEN).")

    @Option(name: .customLong("tag"), help: "A tag to purge (repeatable).") var tags: [String] = []
    @Option(name: .customLong("key"), help: "A URL or path to purge, with its variants (repeatable).") var keys: [String] = []
    @Option(name: .customLong("prefix"), help: "A path prefix to purge (repeatable).") var prefixes: [String] = []
    @Flag(help: "Mark stale instead of removing: served stale while one refresh runs.") var soft = false
    @Flag(help: "Purge everything this node and the fleet cache.") var everything = false
    @Option(help: "The node's admin API.") var admin = "http://127.0.0.1:8081"

    func validate() throws {
        if tags.isEmpty && keys.isEmpty && prefixes.isEmpty && !everything {
            throw ValidationError("say what to purge: --tag, --key, --prefix or --everything")
        }
    }

    func run() async throws {
        do {
            let client = try AdminClient(url: admin, token: try adminTokenFromEnvironment())
            print(try await client.purge(tags: tags, keys: keys, prefixes: prefixes, soft: soft, everything: everything))
        } catch {
            printError("vitrine purge: \(error)")
            throw ExitCode(1)
        }
    }
}

/// The admin token for the operator commands: `VITRINE_ADMIN_TOKEN`, as the node reads it.
func adminTokenFromEnvironment() throws(AdminClient.Failure) -> String {
    guard let token = ProcessInfo.processInfo.environment["VITRINE_ADMIN_TOKEN"], !token.isEmpty else {
        throw AdminClient.Failure(description: "set VITRINE_ADMIN_TOKEN to the node's admin token")
    }
    return token
}
