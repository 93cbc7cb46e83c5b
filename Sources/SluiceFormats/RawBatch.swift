import SluiceCore

/// What a parsed value was in its input, before typing: CSV gives only text (or null); JSON also
/// says number, boolean or nested.
public enum RawKind: UInt8, Sendable {
    case null = 0, text, number, bool, nested
}

/// Untyped values of one column, as parsed: a kind per value and the value's bytes (unescaped text,
/// the number's digits, `true`/`false`, or a nested value's JSON text).
public struct RawColumn: Sendable {
    public var kinds: [UInt8] = []
    public var offsets: [Int] = [0]
    public var bytes: [UInt8] = []

    public init() {}
    public init(nulls: Int) {
        kinds = Array(repeating: RawKind.null.rawValue, count: nulls)
        offsets = Array(repeating: 0, count: nulls + 1)
    }

    public var count: Int { kinds.count }

    @inline(__always)
    public mutating func append(_ kind: RawKind, _ value: UnsafeRawBufferPointer) {
        kinds.append(kind.rawValue)
        if value.count > 0 { bytes.append(contentsOf: value) }
        offsets.append(bytes.count)
    }

    @inline(__always)
    public mutating func appendNull() {
        kinds.append(RawKind.null.rawValue)
        offsets.append(bytes.count)
    }

    public func text(at i: Int) -> String {
        String(decoding: bytes[offsets[i]..<offsets[i + 1]], as: UTF8.self)
    }
}

/// A batch of parsed but untyped records, column-major, plus the records that could not be parsed.
public struct RawBatch: Sendable {
    public var names: [String]
    public var columns: [RawColumn]
    /// Source line (or record number) of each row.
    public var origins: [Int]
    public var rejected: [Rejection]
    /// Bytes of the input file consumed (compressed bytes for compressed files).
    public var bytesRead: Int
    /// True when values carry JSON types, so text is a string and never a number in disguise.
    public var jsonTyped = false

    public init(names: [String] = [], columns: [RawColumn] = [], origins: [Int] = [], rejected: [Rejection] = [], bytesRead: Int = 0) {
        self.names = names
        self.columns = columns
        self.origins = origins
        self.rejected = rejected
        self.bytesRead = bytesRead
    }

    public var rowCount: Int { origins.count }
    public var byteSize: Int { columns.reduce(0) { $0 + $1.bytes.count + $1.kinds.count * 9 } }

    /// The raw values of one row as (name, value) pairs, for quarantine.
    public func record(at row: Int) -> [(String, Value)] {
        names.indices.map { c in
            let col = columns[c]
            guard col.kinds[row] != RawKind.null.rawValue else { return (names[c], .null) }
            let text = col.text(at: row)
            return (names[c], col.kinds[row] == RawKind.nested.rawValue ? .json(text) : .string(text))
        }
    }
}

/// How big a batch's buffers were (rows, and bytes per column with some room), to size the
/// next batch's up front so they do not grow, and copy, value by value.
public struct BatchSizing: Sendable {
    public var rows: Int
    public var bytes: [String: Int]

    public init(_ batch: RawBatch) {
        rows = batch.rowCount
        bytes = Dictionary(zip(batch.names, batch.columns.map { $0.bytes.count + $0.bytes.count / 8 }), uniquingKeysWith: { a, _ in a })
    }
}
