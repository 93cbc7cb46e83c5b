#if canImport(Glibc)
import Glibc
#endif
import SluiceCore

/// Collects JSON objects into untyped columns: one column per top-level key, in first-seen order.
/// Keys usually come in the same order in every record, so the column for the k-th key is
/// predicted from the previous record and confirmed by comparing the input with that key's bytes
/// before falling back to a hash lookup.
struct JSONRecordAssembler {
    var names: [String] = []
    private var index: [[UInt8]: Int] = [:]
    private var predicted: [Int] = []
    private let store = RawColumnBuilder()
    var rows = 0
    var bytes = 0
    private var scratch: [UInt8] = []
    private var keyScratch: [UInt8] = []

    /// How big the next batch will likely be (a batch read elsewhere from the same file), so
    /// column buffers do not grow value by value.
    private var expected: BatchSizing?

    mutating func sizeLike(_ sizing: BatchSizing) { expected = sizing }

    private mutating func column(for key: [UInt8]) -> Int {
        if let c = index[key] { return c }
        let c = names.count
        let name = String(decoding: key, as: UTF8.self)
        names.append(name)
        index[key] = c
        let rowsExpected = expected?.rows ?? 0
        store.addColumn(nulls: rows, rows: rowsExpected, bytes: rowsExpected > 0 ? expected?.bytes[name] ?? 0 : 0, key: key)
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
        // A column has a value for this row once it holds more than `row` values.
        let row = rows
        var k = 0
        do {
            s.skipWhitespace()
            if !s.atEnd, s.current == 125 { s.i += 1 } else {
                while true {
                    s.skipWhitespace()
                    guard !s.atEnd, s.current == 34 else { throw s.fail("expected a key") }
                    let col: Int
                    let guess = k < predicted.count ? predicted[k] : -1
                    if guess >= 0, store.columns[guess].keyMatches(p, at: s.i + 1) {
                        // The key the previous record had here, byte for byte: no scan, no lookup.
                        col = guess
                        s.i += store.columns[col].keyCount + 2
                    } else {
                        if let span = try s.string(scratch: &keyScratch) {
                            col = column(for: Array(UnsafeRawBufferPointer(rebasing: p[span])))
                        } else {
                            col = column(for: keyScratch)
                        }
                        if guess >= 0 { predicted[k] = col } else { predicted.append(col) }
                    }
                    k += 1
                    if !s.atEnd, s.current == 58 { s.i += 1 } else { try s.expect(58) }
                    s.skipWhitespace()
                    guard !s.atEnd else { throw s.fail("unexpected end of input") }
                    if store.columns[col].count > row {
                        try s.skipValue()   // duplicate key: the first value wins
                    } else {
                        try appendValue(&s, to: &store.columns[col])
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
            for c in 0..<store.count where store.columns[c].count > row { store.columns[c].removeLast() }
            throw error
        }
        for c in 0..<store.count where store.columns[c].count == row { store.columns[c].appendNull() }
        rows += 1
    }

    private mutating func appendValue(_ s: inout JSONScanner, to column: inout RawColumnBuilder.Buffers) throws {
        let p = s.p
        switch s.current {
        case 34:
            if let span = try s.string(scratch: &scratch) {
                column.append(.text, UnsafeRawBufferPointer(rebasing: p[span]))
                bytes += span.count
            } else {
                scratch.withUnsafeBytes { column.append(.text, $0) }
                bytes += scratch.count
            }
        case 116:
            try s.literal("true")
            column.append(.bool, UnsafeRawBufferPointer(rebasing: p[(s.i - 4)..<s.i]))
        case 102:
            try s.literal("false")
            column.append(.bool, UnsafeRawBufferPointer(rebasing: p[(s.i - 5)..<s.i]))
        case 110:
            try s.literal("null")
            column.appendNull()
        case 123, 91:
            let start = s.i
            try s.skipValue()
            column.append(.nested, UnsafeRawBufferPointer(rebasing: p[start..<s.i]))
            bytes += s.i - start
        default:
            let span = try s.number()
            column.append(.number, UnsafeRawBufferPointer(rebasing: p[span]))
            bytes += span.count
        }
    }

    /// Takes the rows collected so far as a batch.
    mutating func take(origins: [Int], rejected: [Rejection], bytesRead: Int) -> RawBatch {
        var batch = RawBatch(names: names, columns: store.take(), origins: origins, rejected: rejected, bytesRead: bytesRead)
        batch.jsonTyped = true
        rows = 0
        bytes = 0
        return batch
    }
}
