import VitrineCore

/// A Postgres snapshot as `pg_current_snapshot()::text` writes it: `xmin:xmax:xip,xip,...`.
///
/// Every transaction with an id below `xmin` has ended; `inProgress` lists those between `xmin`
/// and `xmax` that had not; ids from `xmax` on had not been given out yet.
public struct PostgresSnapshot: Sendable, Equatable {
    public var xmin: UInt64
    public var xmax: UInt64
    public var inProgress: [UInt64]

    public init(xmin: UInt64, xmax: UInt64, inProgress: [UInt64]) {
        self.xmin = xmin
        self.xmax = xmax
        self.inProgress = inProgress
    }

    /// Parsed from the server's text; nil when it is not a snapshot (it comes from outside).
    public init?(parsing text: String) {
        let parts = text.split(separator: ":", omittingEmptySubsequences: false)
        guard parts.count == 3, let xmin = UInt64.parsingDigits(parts[0]), let xmax = UInt64.parsingDigits(parts[1]), xmin <= xmax
        else { return nil }
        var inProgress: [UInt64] = []
        if !parts[2].isEmpty {
            for item in parts[2].split(separator: ",", omittingEmptySubsequences: false) {
                guard let xid = UInt64.parsingDigits(item), xid >= xmin, xid < xmax else { return nil }
                inProgress.append(xid)
            }
        }
        self.init(xmin: xmin, xmax: xmax, inProgress: inProgress)
    }
}
