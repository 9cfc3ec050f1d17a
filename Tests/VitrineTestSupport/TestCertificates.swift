import Foundation

/// A CA made for one test, and a certificate it signed for `localhost` and 127.0.0.1, in a fresh
/// directory (openssl). For servers of a test's own that speak TLS (Redis, Postgres).
public struct TestCertificates: Sendable {
    public let directory: String
    public var ca: String { directory + "/ca.pem" }
    public var certificate: String { directory + "/server.pem" }
    public var key: String { directory + "/server.key" }

    public static func make() async throws -> TestCertificates {
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("vitrine-tls-\(UUID().uuidString)").path
        try FileManager.default.createDirectory(atPath: directory, withIntermediateDirectories: true)
        let names = directory + "/names.ext"
        try "subjectAltName=DNS:localhost,IP:127.0.0.1\n".write(toFile: names, atomically: true, encoding: .utf8)
        let curve = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"]
        try await TestCommand.run(
            ["openssl", "req", "-x509"] + curve + ["-keyout", directory + "/ca.key", "-out", directory + "/ca.pem", "-days", "2", "-subj", "/CN=Vitrine test CA"])
        try await TestCommand.run(
            ["openssl", "req"] + curve + ["-keyout", directory + "/server.key", "-out", directory + "/server.csr", "-subj", "/CN=localhost"])
        try await TestCommand.run([
            "openssl", "x509", "-req", "-in", directory + "/server.csr", "-CA", directory + "/ca.pem", "-CAkey", directory + "/ca.key",
            "-CAcreateserial", "-out", directory + "/server.pem", "-days", "2", "-extfile", names,
        ])
        return TestCertificates(directory: directory)
    }

    public func remove() {
        try? FileManager.default.removeItem(atPath: directory)
    }
}
