import Foundation
#if canImport(Glibc)
import Glibc
#endif

/// Loopback ports for test servers, and for addresses where nothing listens.
public enum TestPorts {
    /// A free port below the kernel's ephemeral range, checked with a bare bind (never a listen,
    /// so nothing accepts on it). A port inside the range can be handed to an outgoing connection
    /// as its own port: connecting to it then connects the socket to itself (TCP self-connect),
    /// and a "closed" port answers with the bytes one sent; a server's port can be taken while it
    /// restarts.
    public static func unused() -> Int {
        let range = (try? String(contentsOfFile: "/proc/sys/net/ipv4/ip_local_port_range", encoding: .utf8)) ?? "32768"
        let low = range.split(whereSeparator: \.isWhitespace).first.flatMap { Int($0) } ?? 32768
        while true {
            let candidate = Int.random(in: max(1024, low - 12_000)..<low)
            let fd = socket(AF_INET, Int32(SOCK_STREAM.rawValue), 0)
            guard fd >= 0 else { continue }
            defer { close(fd) }
            var address = sockaddr_in()
            address.sin_family = sa_family_t(AF_INET)
            address.sin_port = in_port_t(UInt16(candidate).bigEndian)
            address.sin_addr.s_addr = inet_addr("127.0.0.1")
            let bound = withUnsafePointer(to: &address) {
                $0.withMemoryRebound(to: sockaddr.self, capacity: 1) { bind(fd, $0, socklen_t(MemoryLayout<sockaddr_in>.size)) }
            }
            if bound == 0 { return candidate }
        }
    }
}
