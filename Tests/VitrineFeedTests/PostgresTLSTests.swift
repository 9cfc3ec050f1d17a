import Foundation
import Testing
import VitrineTestSupport
@testable import VitrineFeed

/// `sslmode` as libpq users expect, against a Postgres of the test's own that takes TLS
/// connections only (plain ones are rejected), its certificate signed by a CA made for the test.
@Suite(.serialized, .timeLimit(.minutes(2)))
struct PostgresTLSTests {
    @Test func theFeedConnectsOverTLSAndVerifiesTheServer() async throws {
        guard TestPostgres.server != nil else { return }
        let certificates = try await TestCertificates.make()
        defer { certificates.remove() }
        let server = try await TestPostgres.Server(tls: certificates)
        defer { server.stop() }
        let url = try await TestPostgres.freshDatabase("vitrine_tls", on: server.url)
        try await TestPostgres.psql(url, file: TestPostgres.sqlFile("vitrine.sql"))
        let ca = certificates.ca

        // Verified: the chain against the test's CA, and the name (or address) against the certificate.
        for (index, mode) in ["sslmode=verify-full&sslrootcert=\(ca)", "sslmode=verify-ca&sslrootcert=\(ca)", "sslmode=require", ""].enumerated() {
            for host in ["127.0.0.1", "localhost"] {
                let target = url.replacingOccurrences(of: "127.0.0.1", with: host) + (mode.isEmpty ? "" : "?" + mode)
                let applied = ChangeFeedTests.Applied()
                let feed = try ChangeFeedTests.makeFeed(target, cursorFile: ChangeFeedTests.cursorFile(), applied: applied)
                let task = Task { try await feed.run() }
                try await ChangeFeedTests.eventually { feed.status.state == "connected" }
                try await TestPostgres.psql(url, "SELECT vitrine_invalidate(ARRAY['tls:\(index):\(host)'])")
                try await ChangeFeedTests.eventually { applied.flat.contains("tls:\(index):\(host)") }
                task.cancel()
            }
        }

        // Refused: no TLS at all (the server rejects it), and a server whose CA is not trusted.
        for mode in ["sslmode=disable", "sslmode=verify-full", "sslmode=verify-ca"] {
            let applied = ChangeFeedTests.Applied()
            let feed = try ChangeFeedTests.makeFeed(url + "?" + mode, cursorFile: ChangeFeedTests.cursorFile(), applied: applied)
            let task = Task { try await feed.run() }
            try await ChangeFeedTests.eventually { feed.status.reconnects >= 2 }
            #expect(feed.status.state == "disconnected", "\(mode)")
            task.cancel()
        }
    }

    @Test func tlsSettingsAreReadAsLibpqReadsThem() throws {
        #expect(try PostgresURL(parsing: "postgres://a@h/db").sslMode == .prefer)
        let full = try PostgresURL(parsing: "postgres://a@h/db?sslmode=verify-full&sslrootcert=/etc/ca.pem&application_name=x")
        #expect(full.sslMode == .verifyFull && full.sslRootCertificates == "/etc/ca.pem")
        #expect(full.database == "db")
        #expect(try PostgresURL(parsing: "postgres://a@h/db?sslmode=require&sslrootcert=system").sslRootCertificates == nil)
        #expect(throws: FeedError.self) { try PostgresURL(parsing: "postgres://a@h/db?sslmode=sometimes") }
        #expect(throws: FeedError.self) { try PostgresURL(parsing: "postgres://a@h:99999/db") }
        // An unreadable CA file is an error when the feed is made, naming the file: not a silent downgrade.
        let missing = try PostgresURL(parsing: "postgres://a@h/db?sslmode=verify-full&sslrootcert=/nonexistent/ca.pem")
        do {
            _ = try missing.tlsConfiguration()
            Issue.record("an unreadable sslrootcert was accepted")
        } catch FeedError.invalidURL(let message) {
            #expect(message.contains("/nonexistent/ca.pem"))
        }
    }
}
