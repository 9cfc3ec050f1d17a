import ArgumentParser
import Foundation
import VitrineConfig
import VitrineProxy

/// `vitrine check-config FILE`: validates a config file; exit 2 with the key named on error.
struct CheckConfig: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "check-config", abstract: "Validate a config file.")

    @Argument(help: "YAML config file.") var file: String

    func run() throws {
        do {
            let configuration = try VitrineConfiguration.load(path: file)
            // The certificates are read as the node would read them: a key that does not go with
            // its certificate is found here, not at the start.
            var tls = ""
            if let settings = configuration.tls {
                do {
                    let certificates = try ServerCertificates(settings)
                    tls = ", tls \(settings.listen): \(certificates.names.map { $0.joined(separator: " ") }.joined(separator: "; "))"
                } catch {
                    throw ConfigError(key: "tls.certificates", "\(error)")
                }
            }
            print(
                "\(file): ok (\(configuration.origins.count) origins, \(configuration.routes.count) routes, listen \(configuration.listen), admin \(configuration.admin.listen)\(tls))"
            )
        } catch {
            throw failConfiguration(error)
        }
    }
}
