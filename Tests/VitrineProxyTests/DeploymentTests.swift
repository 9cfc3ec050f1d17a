import Foundation
import Testing
import VitrineTestSupport
@testable import VitrineNode

/// What an operator deploys with: the systemd unit in config/, and the event-loop default.
struct DeploymentTests {
    static let repository = URL(fileURLWithPath: #filePath).deletingLastPathComponent().deletingLastPathComponent().deletingLastPathComponent()

    @Test func theSystemdUnitVerifies() async throws {
        let unit = Self.repository.appendingPathComponent("config/vitrine.service").path
        let text = try String(contentsOfFile: unit, encoding: .utf8)
        #expect(text.contains("ExecReload=/bin/kill -HUP $MAINPID"))
        #expect(text.contains("KillSignal=SIGTERM"))
        guard FileManager.default.isExecutableFile(atPath: "/usr/bin/systemd-analyze") else { return }
        // verify wants the ExecStart binary to exist: a copy of the unit pointing at one that does.
        let directory = FileManager.default.temporaryDirectory.appendingPathComponent("vitrine-unit-\(UUID().uuidString)")
        try FileManager.default.createDirectory(at: directory, withIntermediateDirectories: true)
        defer { try? FileManager.default.removeItem(at: directory) }
        let copy = directory.appendingPathComponent("vitrine.service").path
        try text.replacingOccurrences(of: "/usr/local/bin/vitrine", with: "/bin/true").write(toFile: copy, atomically: true, encoding: .utf8)
        let output = try await TestCommand.run(["/usr/bin/systemd-analyze", "verify", "--man=no", copy])
        // Lines about the host's own units (no systemd running here) are not the unit's.
        let ours = output.split(separator: "\n").filter { $0.contains("vitrine.service") }
        #expect(ours.isEmpty, "\(ours)")
    }

    @Test func cpuListsAreCounted() {
        #expect(UsableCores.count(cpuList: "0-3,6") == 5)
        #expect(UsableCores.count(cpuList: "\t1") == 1)
        #expect(UsableCores.count(cpuList: "0-1") == 2)
        #expect(UsableCores.count(cpuList: "") == nil)
        #expect(UsableCores.count(cpuList: "3-1") == nil)
        #expect(UsableCores.count(cpuList: "x") == nil)
        #expect(UsableCores.count(cpuList: "0-99999999") == nil)
        #expect(UsableCores.count >= 1)
        #expect(UsableCores.count <= ProcessInfo.processInfo.processorCount)
    }
}
