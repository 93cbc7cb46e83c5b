#if canImport(Glibc)
import Glibc
#endif
import SluiceCore

/// Collects JSON objects into untyped columns: one column per top-level key, in first-seen order.
/// Keys usually come in the same order in every record, so the column for the k-th key is
/// predicted from the previous record and confirmed with one byte comparison before falling back
/// to a hash lookup.
struct JSONRecordAssembler {
    var names: [String] = []
    var nameBytes: [[UInt8]] = []
    /// Whether a key is written in JSON as its bytes between quotes (no byte that needs escaping),
    /// so a predicted key is confirmed by comparing the input with it directly.
    var plainName: [Bool] = []
    var columns: [RawColumn] = []
    var index: [[UInt8]: Int] = [:]
    var predicted: [Int] = []
    var rows = 0
    var bytes = 0
    private var scratch: [UInt8] = []
    private var keyScratch: [UInt8] = []
    private var filled: [Int] = []   // last row index each column received a value

    init(names: [String] = []) {
        for n in names { _ = column(for: Array(n.utf8)) }
    }

    mutating func reset() {
        columns = [RawColumn](repeating: RawColumn(), count: names.count)
        for c in columns.indices { Self.reserve(&columns[c], names[c], expected) }
        filled = [Int](repeating: -1, count: names.count)
        rows = 0
        bytes = 0
    }

    /// How big the next batch will likely be (the previous batch, or one read elsewhere from
    /// the same file), so column buffers do not grow value by value.
    private var expected: BatchSizing?

    mutating func sizeLike(_ sizing: BatchSizing) {
        expected = sizing
        for c in columns.indices where columns[c].count == 0 { Self.reserve(&columns[c], names[c], expected) }
    }

    private static func reserve(_ column: inout RawColumn, _ name: String, _ expected: BatchSizing?) {
        guard let expected, expected.rows > 0, let bytes = expected.bytes[name] else { return }
        column.reserveCapacity(rows: expected.rows, bytes: bytes)
    }

    private mutating func column(for key: [UInt8]) -> Int {
        if let c = index[key] { return c }
        let c = names.count
        names.append(String(decoding: key, as: UTF8.self))
        nameBytes.append(key)
        plainName.append(!key.contains { $0 == 34 || $0 == 92 || $0 < 0x20 })
        index[key] = c
        var column = RawColumn(nulls: rows)
        Self.reserve(&column, names[c], expected)
        columns.append(column)
        filled.append(-1)
        return c
    }

    /// Parses one object spanning all of `p` (surrounding whitespace allowed) and appends it as a
    /// row. On error nothing is appended.
    mutating func appendObject(_ p: UnsafeRawBufferPointer) throws {
        var s = JSONScanner(p)
        s.skipWhitespace()
        guard !s.atEnd, s.current == 123 else {
            throw s.fail(s.atEnd ? "empty record" : "a record must be a JSON object")
        }
        s.i += 1
        let row = rows
        var k = 0
        do {
            s.skipWhitespace()
            if !s.atEnd, s.current == 125 { s.i += 1 } else {
                while true {
                    s.skipWhitespace()
                    guard !s.atEnd, s.current == 34 else { throw s.fail("expected a key") }
                    let col: Int
                    if k < predicted.count, predicted[k] < nameBytes.count, plainName[predicted[k]],
                       nameBytes[predicted[k]].withUnsafeBytes({ key in
                           let end = s.i + 1 + key.count
                           return end < p.count && p[end] == 34 && (key.count == 0 || memcmp(p.baseAddress! + s.i + 1, key.baseAddress!, key.count) == 0)
                       }) {
                        // The key the previous record had here, byte for byte: no scan, no lookup.
                        col = predicted[k]
                        s.i += nameBytes[col].count + 2
                    } else if let span = try s.string(scratch: &keyScratch) {
                        let key = UnsafeRawBufferPointer(rebasing: p[span])
                        if k < predicted.count, predicted[k] < nameBytes.count,
                           nameBytes[predicted[k]].withUnsafeBytes({ $0.count == key.count && (key.count == 0 || memcmp($0.baseAddress!, key.baseAddress!, key.count) == 0) }) {
                            col = predicted[k]
                        } else {
                            col = column(for: Array(key))
                        }
                    } else {
                        col = column(for: keyScratch)
                    }
                    if k < predicted.count { predicted[k] = col } else { predicted.append(col) }
                    k += 1
                    try s.expect(58)
                    s.skipWhitespace()
                    guard !s.atEnd else { throw s.fail("unexpected end of input") }
                    if filled[col] == row {
                        try s.skipValue()   // duplicate key: the first value wins
                    } else {
                        try appendValue(&s, to: col)
                        filled[col] = row
                    }
                    s.skipWhitespace()
                    guard !s.atEnd else { throw s.fail("unexpected end of input") }
                    if s.current == 44 { s.i += 1; continue }
                    if s.current == 125 { s.i += 1; break }
                    throw s.fail("expected ',' or '}'")
                }
            }
            s.skipWhitespace()
            guard s.atEnd else { throw s.fail("unexpected data after the record") }
        } catch {
            // Undo the values this record already appended.
            for c in columns.indices where filled[c] == row {
                columns[c].removeLast()
                filled[c] = -1
            }
            throw error
        }
        for c in columns.indices where filled[c] != row { columns[c].appendNull() }
        rows += 1
    }

    private mutating func appendValue(_ s: inout JSONScanner, to col: Int) throws {
        let p = s.p
        switch s.current {
        case 34:
            if let span = try s.string(scratch: &scratch) {
                columns[col].append(.text, UnsafeRawBufferPointer(rebasing: p[span]))
                bytes += span.count
            } else {
                scratch.withUnsafeBytes { columns[col].append(.text, $0) }
                bytes += scratch.count
            }
        case 116:
            try s.literal("true")
            columns[col].append(.bool, UnsafeRawBufferPointer(rebasing: p[(s.i - 4)..<s.i]))
        case 102:
            try s.literal("false")
            columns[col].append(.bool, UnsafeRawBufferPointer(rebasing: p[(s.i - 5)..<s.i]))
        case 110:
            try s.literal("null")
            columns[col].appendNull()
        case 123, 91:
            let start = s.i
            try s.skipValue()
            columns[col].append(.nested, UnsafeRawBufferPointer(rebasing: p[start..<s.i]))
            bytes += s.i - start
        default:
            let span = try s.number()
            columns[col].append(.number, UnsafeRawBufferPointer(rebasing: p[span]))
            bytes += span.count
        }
    }

    /// Takes the rows collected so far as a batch.
    mutating func take(origins: [Int], rejected: [Rejection], bytesRead: Int) -> RawBatch {
        var batch = RawBatch(names: names, columns: columns, origins: origins, rejected: rejected, bytesRead: bytesRead)
        batch.jsonTyped = true
        sizeLike(BatchSizing(batch))
        reset()
        return batch
    }
}
