import ArgumentParser
import VitrineNode

/// `vitrine stats`: a node's counters, as `GET /stats` gives them (JSON).
struct Stats: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        abstract: "Print a node's counters (JSON) from its admin API (the token from $VITRINE_ADMIN_TOKEN).")

    @Option(help: "The node's admin API.") var admin = "http://127.0.0.1:8081"

    func run() async throws {
        do {
            let client = try AdminClient(url: admin, token: try adminTokenFromEnvironment())
            print(try await client.stats())
        } catch {
            printError("vitrine stats: \(error)")
            throw ExitCode(1)
        }
    }
}
