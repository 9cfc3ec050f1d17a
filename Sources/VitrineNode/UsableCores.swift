import Foundation
import NIOCore

/// How many cores this process may run on: the CPU affinity mask (`taskset`, systemd's
/// `CPUAffinity=`, a container's cpuset) and the cgroup CPU quota (`cpu.max`, which SwiftNIO's
/// `System.coreCount` reads), whichever is smaller. `server.event_loops: 0` starts one event loop
/// per usable core, as nginx's `worker_processes auto` does: on a machine shared with a load
/// generator, pin the proxy (`taskset -c 1`) and it starts one loop, which is what measures best
/// there (see README, "Operate").
public enum UsableCores {
    public static var count: Int {
        max(1, min(System.coreCount, affinityCount ?? System.coreCount))
    }

    /// The cores in this process's affinity mask, as the kernel lists them in
    /// `/proc/self/status` (`Cpus_allowed_list: 0-3,6`); nil where it cannot be read.
    static var affinityCount: Int? {
        guard let status = try? String(contentsOfFile: "/proc/self/status", encoding: .utf8) else { return nil }
        for line in status.split(separator: "\n") where line.hasPrefix("Cpus_allowed_list:") {
            return count(cpuList: line.dropFirst("Cpus_allowed_list:".count))
        }
        return nil
    }

    /// The number of CPUs in a kernel CPU list (`0-3,6`); nil when it is not one.
    static func count(cpuList: Substring) -> Int? {
        var total = 0
        for part in cpuList.split(separator: ",") {
            let bounds = part.split(separator: "-", maxSplits: 1).map { Int($0.trimmingCharacters(in: .whitespaces)) }
            guard let first = bounds.first ?? nil, first >= 0 else { return nil }
            let last = bounds.count == 2 ? (bounds[1] ?? -1) : first
            guard last >= first, last - first < 1 << 16 else { return nil }
            total += last - first + 1
        }
        return total > 0 ? total : nil
    }
}
