/// One typed column of a `RecordBatch`, stored Arrow-style: contiguous values plus a validity bitmap.
///
/// Only the buffer that matches the column's physical type is used:
/// `int64s` for int64 and timestamp (µs), `int32s` for date (days), `doubles`, `bools`,
/// `decimals` (unscaled), and `offsets` + `bytes` for string, bytes and json (UTF-8 / raw bytes,
/// value `i` is `bytes[offsets[i]..<offsets[i+1]]`). Separate stored arrays, rather than an enum with
/// payloads, keep appends in place without copy-on-write traps.
public struct Column: Sendable {
    public let type: DataType
    public private(set) var validity = Bitmap()
    public var count: Int { validity.count }
    public var nullCount: Int { validity.unsetCount }

    public internal(set) var int64s: [Int64] = []
    public internal(set) var int32s: [Int32] = []
    public internal(set) var doubles: [Double] = []
    public internal(set) var bools: [Bool] = []
    public internal(set) var decimals: [Int128] = []
    public internal(set) var offsets: [Int] = [0]
    public internal(set) var bytes: [UInt8] = []

    public init(type: DataType, capacity: Int = 0) {
        self.type = type
        reserveCapacity(capacity)
    }

    /// A string, bytes or json column over existing buffers, without copying them: value `i` is
    /// `bytes[offsets[i]..<offsets[i+1]]`, null where `validity` is unset.
    public init(type: DataType, validity: Bitmap, offsets: [Int], bytes: [UInt8]) {
        precondition(type.physical == .binary && offsets.count == validity.count + 1)
        self.type = type
        self.validity = validity
        self.offsets = offsets
        self.bytes = bytes
    }

    /// A fixed-width column over ready buffers (one of them, matching `type`).
    package init(type: DataType, validity: Bitmap, int64s: [Int64] = [], int32s: [Int32] = [], doubles: [Double] = [], bools: [Bool] = [],
                 decimals: [Int128] = []) {
        self.type = type
        self.validity = validity
        self.int64s = int64s
        self.int32s = int32s
        self.doubles = doubles
        self.bools = bools
        self.decimals = decimals
    }

    public mutating func reserveCapacity(_ n: Int) {
        guard n > 0 else { return }
        validity.reserveCapacity(n)
        switch type.physical {
        case .int64: int64s.reserveCapacity(n)
        case .int32: int32s.reserveCapacity(n)
        case .double: doubles.reserveCapacity(n)
        case .bool: bools.reserveCapacity(n)
        case .int128: decimals.reserveCapacity(n)
        case .binary: offsets.reserveCapacity(n + 1)
        }
    }

    @inline(__always) public func isNull(_ row: Int) -> Bool { validity.unsetCount > 0 && !validity[row] }

    // MARK: Appending

    public mutating func appendNull() {
        validity.append(false)
        switch type.physical {
        case .int64: int64s.append(0)
        case .int32: int32s.append(0)
        case .double: doubles.append(0)
        case .bool: bools.append(false)
        case .int128: decimals.append(0)
        case .binary: offsets.append(bytes.count)
        }
    }

    @inline(__always) public mutating func append(int64 v: Int64) { validity.append(true); int64s.append(v) }
    @inline(__always) public mutating func append(int32 v: Int32) { validity.append(true); int32s.append(v) }
    @inline(__always) public mutating func append(double v: Double) { validity.append(true); doubles.append(v) }
    @inline(__always) public mutating func append(bool v: Bool) { validity.append(true); bools.append(v) }
    @inline(__always) public mutating func append(decimal v: Int128) { validity.append(true); decimals.append(v) }

    @inline(__always)
    public mutating func append(bytes v: UnsafeRawBufferPointer) {
        validity.append(true)
        bytes.append(contentsOf: v)
        offsets.append(bytes.count)
    }

    public mutating func append(string v: String) {
        var v = v
        v.withUTF8 { append(bytes: UnsafeRawBufferPointer($0)) }
    }

    public mutating func append(byteArray v: [UInt8]) { v.withUnsafeBytes { append(bytes: $0) } }

    /// `count` copies of `value` (a parent's key added to each child record, say).
    public init(repeating value: Value, count: Int) {
        self.init(type: value.dataType, capacity: count)
        for _ in 0..<count { append(value) }
    }

    /// Appends a value, converting where the row view's value has another representation.
    public mutating func append(_ value: Value) {
        switch (value, type) {
        case (.null, _): appendNull()
        case (.bool(let b), .bool): append(bool: b)
        case (.int64(let i), .int64): append(int64: i)
        case (.timestamp(let t), .timestamp): append(int64: t)
        case (.date(let d), .date): append(int32: d)
        case (.date(let d), .timestamp): append(int64: Int64(d) * Temporal.microsPerDay)
        case (.double(let d), .double): append(double: d)
        case (.int64(let i), .double): append(double: Double(i))
        case (.decimal(let u, let s), .decimal(_, let scale)):
            append(decimal: DecimalText.rescale(u, from: s, to: scale) ?? 0)
        case (.int64(let i), .decimal(_, let scale)):
            append(decimal: DecimalText.rescale(Int128(i), from: 0, to: scale) ?? 0)
        case (.bytes(let b), _): append(byteArray: b)
        case (.string(let s), .string), (.json(let s), .json), (.json(let s), .string):
            append(string: s)
        default:
            append(string: value.text)
        }
    }

    /// Appends row `row` of `other` (same physical type required).
    public mutating func append(from other: Column, row: Int) {
        if other.isNull(row) { appendNull(); return }
        guard other.type.physical == type.physical else { append(other.value(at: row)); return }
        switch type.physical {
        case .int64: append(int64: other.int64s[row])
        case .int32: append(int32: other.int32s[row])
        case .double: append(double: other.doubles[row])
        case .bool: append(bool: other.bools[row])
        case .int128:
            if other.type == type { append(decimal: other.decimals[row]) } else { append(other.value(at: row)) }
        case .binary:
            other.withBytes(at: row) { append(bytes: $0) }
        }
    }

    // MARK: Reading

    /// Calls `body` with the raw bytes of a string/bytes/json value, without copying.
    @inline(__always)
    public func withBytes<R>(at row: Int, _ body: (UnsafeRawBufferPointer) throws -> R) rethrows -> R {
        let start = offsets[row], end = offsets[row + 1]
        return try bytes.withUnsafeBytes { try body(UnsafeRawBufferPointer(rebasing: $0[start..<end])) }
    }

    public func string(at row: Int) -> String {
        withBytes(at: row) { String(decoding: $0, as: UTF8.self) }
    }

    /// The value at `row` as a row-view value.
    public func value(at row: Int) -> Value {
        if isNull(row) { return .null }
        switch type {
        case .bool: return .bool(bools[row])
        case .int64: return .int64(int64s[row])
        case .timestamp: return .timestamp(int64s[row])
        case .date: return .date(int32s[row])
        case .double: return .double(doubles[row])
        case .decimal(_, let s): return .decimal(decimals[row], scale: s)
        case .string: return .string(string(at: row))
        case .json: return .json(string(at: row))
        case .bytes: return .bytes(Array(bytes[offsets[row]..<offsets[row + 1]]))
        }
    }

    /// Approximate memory held by the values, for batch-size accounting.
    public var byteSize: Int {
        count / 8 + int64s.count * 8 + int32s.count * 4 + doubles.count * 8 + bools.count
            + decimals.count * 16 + offsets.count * 8 + bytes.count
    }

    /// A column holding only the given rows, in that order.
    public func taking(_ rows: [Int]) -> Column {
        var out = Column(type: type, capacity: rows.count)
        for r in rows { out.append(from: self, row: r) }
        return out
    }

    /// This column converted to `newType`; values that do not convert become null and their rows
    /// are reported in `failures`.
    public func converted(to newType: DataType, failures: inout [Int]) -> Column {
        if newType == type { return self }
        var out = Column(type: newType, capacity: count)
        for row in 0..<count {
            let v = value(at: row)
            if case .null = v { out.appendNull(); continue }
            if let c = v.converted(to: newType) { out.append(c) } else { out.appendNull(); failures.append(row) }
        }
        return out
    }
}

/// How a `DataType` is laid out in memory.
public enum PhysicalType: Sendable { case int64, int32, double, bool, int128, binary }

extension DataType {
    public var physical: PhysicalType {
        switch self {
        case .bool: .bool
        case .int64, .timestamp: .int64
        case .date: .int32
        case .double: .double
        case .decimal: .int128
        case .string, .bytes, .json: .binary
        }
    }
}
