/// A WAL position, `X/Y` in PostgreSQL's text form (two 32-bit halves in hex).
public struct LSN: Sendable, Comparable, Hashable, CustomStringConvertible {
    public var value: UInt64

    public init(_ value: UInt64) { self.value = value }

    public init?(_ text: String) {
        let parts = text.split(separator: "/")
        guard parts.count == 2, let high = UInt64(parts[0], radix: 16), let low = UInt64(parts[1], radix: 16),
              high <= 0xFFFF_FFFF, low <= 0xFFFF_FFFF else { return nil }
        value = high << 32 | low
    }

    public var description: String { String(value >> 32, radix: 16, uppercase: true) + "/" + String(value & 0xFFFF_FFFF, radix: 16, uppercase: true) }

    public static func < (a: LSN, b: LSN) -> Bool { a.value < b.value }
}

/// The transactions a snapshot of a table already contains: from `pg_current_snapshot()` taken
/// as the snapshot's first statement, and the WAL position read right after it.
///
/// A stream transaction is already in the snapshot when it committed before `wal` and its id is
/// visible in the snapshot (below `xmin`, or below `xmax` and not in progress); such transactions
/// are skipped for that table, so the snapshot and the stream meet without a gap or an overlap.
struct SnapshotCoverage: Codable, Equatable {
    var xmin: UInt64
    var xmax: UInt64
    var inProgress: [UInt64]
    /// `pg_current_wal_lsn()` after the snapshot was taken.
    var wal: String

    /// Parses `xmin:xmax:xip,xip,…`.
    init?(snapshot text: String, wal: String) {
        let parts = text.split(separator: ":", omittingEmptySubsequences: false)
        guard parts.count == 3, let xmin = UInt64(parts[0]), let xmax = UInt64(parts[1]) else { return nil }
        self.xmin = xmin
        self.xmax = xmax
        inProgress = parts[2].split(separator: ",").compactMap { UInt64($0) }
        self.wal = wal
    }

    /// Whether the transaction `xid` (32 bits, as the WAL decoder reports it) committing at
    /// `commitEnd` is part of the snapshot.
    func contains(xid: Int64, commitEnd: LSN) -> Bool {
        guard let limit = LSN(wal), commitEnd <= limit else { return false }
        let full = Self.widen(UInt32(truncatingIfNeeded: xid), near: xmax)
        return full < xmin || (full < xmax && !inProgress.contains(full))
    }

    /// A 32-bit transaction id as the 64-bit one nearest to `reference` (ids wrap around every 2^32).
    static func widen(_ xid: UInt32, near reference: UInt64) -> UInt64 {
        let epoch = reference >> 32
        let candidate = epoch << 32 | UInt64(xid)
        if candidate > reference, candidate - reference > 1 << 31, epoch > 0 { return candidate - (1 << 32) }
        if candidate < reference, reference - candidate > 1 << 31 { return candidate + (1 << 32) }
        return candidate
    }
}
