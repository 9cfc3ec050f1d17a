import ArgumentParser
import Foundation
import VitrineConfig

/// `vitrine check-config FILE`: validates a config file; exit 2 with the key named on error.
struct CheckConfig: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "check-config", abstract: "Validate a config file.")

    @Argument(help: "YAML config file.") var file: String

    func run() throws {
        do {
            let configuration = try VitrineConfiguration.load(path: file)
            print(
                "\(file): ok (\(configuration.origins.count) origins, \(configuration.routes.count) routes, listen \(configuration.listen), admin \(configuration.admin.listen))"
            )
        } catch {
            throw failConfiguration(error)
        }
    }
}
