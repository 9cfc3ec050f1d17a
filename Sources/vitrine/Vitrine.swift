import ArgumentParser
import VitrineNode

@main
struct Vitrine: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "vitrine",
        abstract: "A caching read tier and edge reverse proxy for catalog and search APIs.",
        version: VitrineVersion.current,
        subcommands: [Serve.self, Demo.self, Origin.self, CheckConfig.self, Purge.self, Stats.self]
    )
}
