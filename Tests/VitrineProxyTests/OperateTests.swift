import Foundation
import Logging
import NIOCore
import NIOPosix
import NIOSSL
import Synchronization
import Testing
import VitrineConfig
import VitrineCore
@testable import VitrineNode
@testable import VitrineProxy

/// Running a node as an SRE would: draining on SIGTERM, client addresses behind load balancers
/// (trusted proxies, the PROXY protocol), the access log and labelled metrics.
@Suite(.timeLimit(.minutes(1)))
struct OperateTests {
    /// - Parameter echoTLS: the echo origin speaks HTTPS with it (the route's origin URL is
    ///   still `http://`: `configure` makes it `https://`).
    static func withEcho(
        accessLog: LogLines? = nil,
        reload: ConfigReloader? = nil,
        echoTLS: NIOSSLContext? = nil,
        configure: @escaping (inout VitrineConfiguration) -> Void = { _ in },
        _ body: (ProxyFixture, EchoOrigin) async throws -> Void
    ) async throws {
        let echo = try await EchoOrigin.start(tls: echoTLS)
        do {
            try await ProxyFixture.with(
                originURL: "http://127.0.0.1:\(echo.port)", accessLog: accessLog, reload: reload,
                configure: { configuration in
                    configuration.routes.append(RouteSettings(prefix: "/echo/", origin: "catalog", defaultTTL: .seconds(60)))
                    configure(&configuration)
                }
            ) { fixture in
                try await body(fixture, echo)
            }
            await echo.stop()
        } catch {
            await echo.stop()
            throw error
        }
    }

    // MARK: Drain

    @Test func drainFinishesWhatIsInFlightAndThenRefusesConnections() async throws {
        try await Self.withEcho(configure: { configuration in
            configuration.server.drainDelay = .seconds(3)
            configuration.server.drainTimeout = .seconds(20)
            for name in configuration.origins.keys { configuration.origins[name]?.firstByteTimeout = .seconds(15) }
        }) { fixture, echo in
            let port = fixture.proxyPort
            // In flight when the drain starts: a slow answer (3.5 s at the origin, past the delay).
            let slow = Task {
                do {
                    return try await WireConnection.with(port: port) { connection in
                        try await connection.request("GET", "/echo/slow?delay=3500&pad=20000")
                    }
                } catch {
                    Issue.record("the slow request: \(error)")
                    throw error
                }
            }
            // An idle keep-alive connection: answered once before the drain, then closed by it.
            let (answeredOnce, signal) = AsyncStream<Void>.makeStream()
            let idleClosed = Task {
                do {
                    return try await WireConnection.with(port: port) { connection -> Bool in
                        let first = try await connection.request("GET", "/echo/idle")
                        #expect(first.status == 200 && first.header("connection") == nil)
                        signal.yield()
                        _ = try await connection.readUntilClosed()
                        return true
                    }
                } catch {
                    Issue.record("the idle connection: \(error)")
                    throw error
                }
            }
            for await _ in answeredOnce { break }
            while echo.inFlight < 1 { try await Task.sleep(for: .milliseconds(10)) }
            let started = ContinuousClock.now
            let drain = Task { await fixture.node.drain() }
            try await Task.sleep(for: .milliseconds(50))
            // Readiness turns first, while the listener still takes connections.
            let ready = try await fixture.admin("GET", "/readyz")
            #expect(ready.status == 503)
            #expect(ready.text.contains("\"draining\":true"))
            // Within the delay (on a loaded machine a request can take a while: it is sent at once).
            let during = try await fixture.get("/echo/during")
            #expect(during.status == 200)
            #expect(during.header("connection") == "close")
            // After the delay nobody is accepted.
            var refused = false
            while !refused && ContinuousClock.now - started < .seconds(15) {
                let attempt = ContinuousClock.now
                do {
                    _ = try await WireConnection.with(port: port) { connection in try await connection.request("GET", "/echo/late") }
                    #expect(attempt - started < .milliseconds(3500), "accepted after the drain delay")
                    try await Task.sleep(for: .milliseconds(100))
                } catch {
                    refused = true
                }
            }
            #expect(refused)
            #expect(ContinuousClock.now - started >= .seconds(3))
            // What was in flight finishes, whole; the idle connection is closed.
            let answer = try await slow.value
            #expect(answer.status == 200)
            #expect(answer.body.count > 20000)
            #expect(try await idleClosed.value)
            await drain.value
        }
    }

    // MARK: Client addresses

    @Test func anUntrustedPeersForwardedForIsReplaced() async throws {
        try await Self.withEcho(configure: { configuration in
            configuration.server.trustedProxies = [CIDRBlock(parsing: "10.0.0.0/8")!]
        }) { fixture, _ in
            let seen = try await fixture.send(
                "POST", "/echo/a", headers: [("X-Forwarded-For", "203.0.113.9"), ("X-Forwarded-Proto", "https"), ("X-Request-Id", "mine")],
                body: "{}"
            ).text
            #expect(seen.contains("\nx-forwarded-for: 127.0.0.1\n"))
            #expect(seen.contains("\nx-forwarded-proto: http\n"))
            #expect(!seen.contains("\nx-request-id: mine\n"))
            #expect(seen.contains("\nx-request-id: "))
        }
    }

    @Test func aTrustedProxysForwardedForIsKeptAndNamesTheClient() async throws {
        let log = LogLines()
        try await Self.withEcho(accessLog: log, configure: { configuration in
            configuration.server.trustedProxies = [CIDRBlock(parsing: "127.0.0.0/8")!]
            configuration.server.accessLog = true
        }) { fixture, _ in
            let seen = try await fixture.send(
                "POST", "/echo/b", headers: [("X-Forwarded-For", "203.0.113.9"), ("X-Forwarded-Proto", "https"), ("X-Request-Id", "lb-42")],
                body: "{}"
            ).text
            #expect(seen.contains("\nx-forwarded-for: 203.0.113.9, 127.0.0.1\n"))
            #expect(seen.contains("\nx-forwarded-proto: https\n"))
            #expect(seen.contains("\nx-request-id: lb-42\n"))
            _ = try await log.wait(for: 1, flushing: fixture.node.context.accessLog)
            let entry = try #require(try log.json().first)
            #expect(entry["client"] as? String == "203.0.113.9")
            #expect(entry["request_id"] as? String == "lb-42")
        }
    }

    @Test func theProxyProtocolNamesTheClient() async throws {
        try await Self.withEcho(configure: { configuration in
            configuration.server.proxyProtocol = true
        }) { fixture, _ in
            let v1 = try await WireConnection.with(port: fixture.proxyPort) { connection in
                try await connection.send("PROXY TCP4 198.51.100.7 192.0.2.1 40000 80\r\n")
                return try await connection.request("POST", "/echo/v1", body: "{}")
            }
            #expect(v1.text.contains("\nx-forwarded-for: 198.51.100.7\n"))
            let signature: [UInt8] = [0x0D, 0x0A, 0x0D, 0x0A, 0x00, 0x0D, 0x0A, 0x51, 0x55, 0x49, 0x54, 0x0A]
            let v2 = try await WireConnection.with(port: fixture.proxyPort) { connection in
                try await connection.send(bytes: signature + [0x21, 0x11, 0x00, 0x0C, 10, 20, 30, 40, 192, 0, 2, 1, 0x12, 0x34, 0x00, 0x50])
                return try await connection.request("POST", "/echo/v2", body: "{}")
            }
            #expect(v2.text.contains("\nx-forwarded-for: 10.20.30.40\n"))
            // Without a header the connection is not served.
            let none = try await WireConnection.with(port: fixture.proxyPort) { connection in
                try await connection.send("GET /echo/none HTTP/1.1\r\nHost: shop.test\r\n\r\n")
                return try await connection.readUntilClosed()
            }
            #expect(none.isEmpty)
        }
    }

    // MARK: Access log

    @Test func accessLogLinesCarryWhatAnSREReads() async throws {
        let log = LogLines()
        try await Self.withEcho(accessLog: log, configure: { configuration in
            configuration.server.accessLog = true
        }) { fixture, _ in
            #expect(try await fixture.get("/echo/logged", headers: [("User-Agent", "probe/1.0"), ("Referer", "https://shop.test/")]).status == 200)
            #expect(try await fixture.get("/echo/logged").status == 200)
            #expect(try await fixture.get("/nowhere").status == 404)
            _ = try await log.wait(for: 3, flushing: fixture.node.context.accessLog)
            let entries = try log.json()
            #expect(entries.count == 3)
            let miss = entries[0]
            #expect(miss["method"] as? String == "GET")
            #expect(miss["target"] as? String == "/echo/logged")
            #expect(miss["status"] as? Int == 200)
            #expect(miss["cache"] as? String == "miss")
            #expect(miss["route"] as? String == "/echo/")
            #expect(miss["client"] as? String == "127.0.0.1")
            #expect(miss["user_agent"] as? String == "probe/1.0")
            #expect(miss["referer"] as? String == "https://shop.test/")
            #expect((miss["bytes"] as? Int ?? 0) > 100)
            #expect(miss["duration"] is Double || miss["duration"] is Int)
            #expect(miss["origin_time"] != nil)
            #expect((miss["request_id"] as? String)?.isEmpty == false)
            #expect((miss["time"] as? String)?.hasSuffix("Z") == true)
            #expect(entries[1]["cache"] as? String == "hit")
            #expect(entries[1]["origin_time"] == nil)
            #expect(entries[1]["request_id"] as? String != miss["request_id"] as? String)
            #expect(entries[2]["status"] as? Int == 404)
            #expect(entries[2]["cache"] as? String == "none")
        }
    }

    @Test func combinedFormatAndSampling() async throws {
        let log = LogLines()
        try await Self.withEcho(accessLog: log, configure: { configuration in
            configuration.server.accessLog = true
            configuration.server.accessLogFormat = .combined
            configuration.server.accessLogSample = 0
        }) { fixture, echo in
            for index in 0..<5 { _ = try await fixture.get("/echo/sampled-\(index)") }
            echo.setFailing(true)
            #expect(try await fixture.send("POST", "/echo/broken", body: "{}").status == 503)
            // Sampled down to nothing, but a 5xx is always logged.
            let lines = try await log.wait(for: 1, flushing: fixture.node.context.accessLog)
            #expect(lines.count == 1)
            let line = try #require(lines.first)
            #expect(line.hasPrefix("127.0.0.1 - - ["))
            #expect(line.contains("] \"POST /echo/broken HTTP/1.1\" 503 "))
            #expect(line.contains(" PASS "))
        }
    }

    // MARK: Metrics

    @Test func theDashboardAsksOnlyForMetricsTheNodeExports() async throws {
        let path = DeploymentTests.repository.appendingPathComponent("config/grafana-dashboard.json").path
        let dashboard = try String(contentsOfFile: path, encoding: .utf8)
        let asked = Set(dashboard.matches(of: /vitrine_[a-z0-9_]+/).map { String($0.output) })
        #expect(asked.count > 15)
        try await Self.withEcho { fixture, _ in
            _ = try await fixture.get("/echo/d")
            let exported = try await fixture.admin("GET", "/metrics").text
            for name in asked.sorted() {
                #expect(exported.contains("\n\(name)") || exported.contains("\n\(name){"), "\(name) is not exported")
            }
        }
    }

    @Test func metricsAreLabelledAndExplained() async throws {
        try await Self.withEcho { fixture, _ in
            _ = try await fixture.get("/echo/m")
            _ = try await fixture.get("/echo/m")
            _ = try await fixture.get("/nowhere")
            let text = try await fixture.admin("GET", "/metrics").text
            #expect(text.contains(#"vitrine_http_requests_total{route="/echo/",method="read",status="2xx",cache="hit"} 1"#))
            #expect(text.contains(#"vitrine_http_requests_total{route="/echo/",method="read",status="2xx",cache="miss"} 1"#))
            #expect(text.contains(#"vitrine_http_requests_total{route="-",method="read",status="4xx",cache="none"} 1"#))
            #expect(text.contains(#"vitrine_http_request_duration_seconds_count{cache="hit"} 1"#))
            #expect(text.contains(#"vitrine_origin_response_seconds_count{origin="catalog"} 1"#))
            #expect(text.contains("vitrine_l2_hits_total"))
            #expect(text.contains("vitrine_collapsed_requests_total"))
            #expect(text.contains("vitrine_revalidations_total"))
            // Every metric says what it is.
            let lines = text.split(separator: "\n")
            let typed = Set(lines.filter { $0.hasPrefix("# TYPE ") }.map { $0.split(separator: " ")[2] })
            let helped = Set(lines.filter { $0.hasPrefix("# HELP ") }.map { $0.split(separator: " ")[2] })
            #expect(!typed.isEmpty)
            #expect(typed.subtracting(helped).isEmpty, "no HELP for \(typed.subtracting(helped).sorted())")
        }
    }
}

/// `--log-format json`: one object per line, the message and metadata as fields.
struct JSONLogHandlerTests {
    final class Lines: Sendable {
        let text = Mutex("")
    }

    @Test func aLogLineIsOneJSONObject() throws {
        let lines = Lines()
        var handler = JSONLogHandler(label: "vitrine", write: { line in lines.text.withLock { $0 += line } })
        handler.logLevel = .info
        handler[metadataKey: "node"] = "n1"
        let logger = Logger(label: "vitrine") { _ in handler }
        logger.info("configuration reloaded", metadata: ["generation": "2", "odd": "quote \" and\nnewline"])
        logger.debug("not at this level")
        let text = lines.text.withLock { $0 }
        #expect(text.hasSuffix("}\n"))
        #expect(text.split(separator: "\n").count == 1)
        let object = try #require(try JSONSerialization.jsonObject(with: Data(text.utf8)) as? [String: String])
        #expect(object["message"] == "configuration reloaded")
        #expect(object["level"] == "info")
        #expect(object["generation"] == "2")
        #expect(object["node"] == "n1")
        #expect(object["odd"] == "quote \" and\nnewline")
        #expect(object["time"]?.hasSuffix("Z") == true)
    }
}
