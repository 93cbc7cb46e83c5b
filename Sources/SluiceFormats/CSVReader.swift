#if canImport(Glibc)
import Glibc
#endif
import SluiceCore

/// Options of the CSV dialect (`csv:` in a files source).
public struct CSVOptions: Sendable {
    /// First record holds the column names. Default: true.
    public var header = true
    public var delimiter: UInt8 = UInt8(ascii: ",")
    public var quote: UInt8 = UInt8(ascii: "\"")
    /// Unquoted field values read as null. A quoted value is never null, so `""` stays an empty string.
    public var nullValues: [String] = ["", "NULL", "null"]
    /// Column names when there is no header (default `column_1`, `column_2`, …).
    public var columnNames: [String]?
    /// Longest record accepted; a longer one is an error rather than unbounded memory.
    public var maxRecordBytes = 64 << 20

    public init() {}
}

/// A streaming RFC 4180 CSV parser that writes fields straight into untyped columns.
///
/// Handles quoted fields, doubled quotes, embedded newlines, CRLF / LF / CR line ends, a UTF-8 BOM and
/// custom delimiter/quote. A record with the wrong number of fields, or with text after a closing
/// quote, is rejected with its line number and raw text; the records around it load normally.
/// Memory is bounded by the batch size plus the longest record.
public final class CSVReader {
    private let reader: ByteReader
    private let options: CSVOptions
    private let location: String
    private var buffer: [UInt8] = []
    private var position = 0
    private var eof = false
    private var line = 1
    private var readSize = 1 << 20
    private let nullValues: [[UInt8]]
    private let emptyIsNull: Bool
    public private(set) var header: [String] = []
    private var lastRawBytes: Int64 = 0
    /// The columns of the batch being read, one per header name; their buffers are kept from batch
    /// to batch.
    private var store = RawColumnBuilder()
    /// Row count and per-column byte sizes of a batch read elsewhere, to size the first one by.
    private var expectedRows = 0
    private var expectedColumnBytes: [Int] = []

    /// Field spans of the record being parsed, reused across records. Hot loops work on a local
    /// copy moved out of `self`: stored properties of a class pay a dynamic exclusivity check on
    /// every access, which cost more than the parsing itself.
    /// One field of the record being scanned: its bytes in the buffer, whether it was quoted and
    /// whether it has doubled quotes to collapse. One array of them, so a field costs one append.
    struct Span {
        var start: Int
        var end: Int
        var escaped: Bool
        var quoted: Bool
    }
    struct Spans {
        var items: [Span] = []
        var count: Int { items.count }
        mutating func removeAll() { items.removeAll(keepingCapacity: true) }
    }
    private var spans = Spans()
    /// True when the input ended inside a quoted field. For a block cut from a larger file (see
    /// `RecordBlockCutter`) it means the cut was not between two records.
    public private(set) var endedInsideQuotes = false

    /// `firstLine` numbers the first line of `reader`'s bytes; a block cut from the middle of a
    /// file (`startsFile: false`) has no byte order mark to skip.
    public init(reader: ByteReader, options: CSVOptions, location: String, firstLine: Int = 1, startsFile: Bool = true) throws {
        self.reader = reader
        self.options = options
        self.location = location
        line = firstLine
        nullValues = options.nullValues.filter { !$0.isEmpty }.map { Array($0.utf8) }
        emptyIsNull = options.nullValues.contains("")
        try fill()
        if startsFile, buffer.count >= 3, buffer[0] == 0xEF, buffer[1] == 0xBB, buffer[2] == 0xBF { position = 3 }
        try readHeader()
    }

    /// The line the next record starts on.
    public var nextLine: Int { line }

    /// Sizes the first batch's buffers like those of a batch read elsewhere from the same file.
    public func sizeLike(_ sizing: BatchSizing) {
        expectedRows = sizing.rows
        expectedColumnBytes = header.map { sizing.bytes[$0] ?? 0 }
    }

    private func fill() throws {
        if position > 0, position >= buffer.count / 2 {
            buffer.removeConsumed(position)
            position = 0
        }
        if try reader.read(into: &buffer, max: readSize) == 0 { eof = true }
    }

    private func readHeader() throws {
        guard options.header else {
            header = options.columnNames ?? []
            return
        }
        skipBlankLines()
        var fields: [String] = []
        var spans = Spans()
        while true {
            switch scanRecord(&spans) {
            case .incomplete:
                if eof { header = options.columnNames ?? []; return }
                try fill()
                skipBlankLines()
                continue
            case .malformed(let message, _):
                throw SluiceError(.parse, "header: \(message)", location: "\(location) line \(line)")
            case .complete(let end, let lines):
                fields = (0..<spans.count).map { fieldString($0, spans) }
                position = end
                line += lines
            }
            break
        }
        var seen: [String: Int] = [:]
        header = fields.enumerated().map { i, raw in
            var name = raw.trimmingCharacters(in: " \t")
            if name.isEmpty { name = "column_\(i + 1)" }
            if let n = seen[name] { seen[name] = n + 1; name = "\(name)_\(n + 1)" } else { seen[name] = 1 }
            return name
        }
        if let names = options.columnNames { header = names }
    }

    private func skipBlankLines() {
        while position < buffer.count, buffer[position] == 10 || buffer[position] == 13 {
            // A CR at the end of what was read may be the first half of a CRLF: decide after a refill.
            if buffer[position] == 13, position + 1 == buffer.count, !eof { return }
            if buffer[position] == 10 || (buffer[position] == 13 && (position + 1 >= buffer.count || buffer[position + 1] != 10)) { line += 1 }
            position += 1
        }
    }

    /// Reads up to `maxRows` records or about `maxBytes` of values; nil at the end of the file.
    public func next(maxRows: Int, maxBytes: Int) throws -> RawBatch? {
        if store.count != header.count { store = columnStore() }
        var columns = store.columns
        var batch = RawBatch(names: header)
        var bytes = 0
        var spans = Spans()
        swap(&spans, &self.spans)
        defer { swap(&spans, &self.spans) }
        while batch.rowCount + batch.rejected.count < maxRows, bytes < maxBytes {
            skipBlankLines()
            if position >= buffer.count {
                if eof { break }
                try fill()
                continue
            }
            switch scanRecord(&spans) {
            case .incomplete:
                if eof {
                    // The file ends inside a quoted field.
                    endedInsideQuotes = true
                    batch.rejected.append(Rejection(reason: .parse, message: "unterminated quoted field at end of file",
                                                    origin: line, raw: rawText(position, buffer.count)))
                    position = buffer.count
                    continue
                }
                guard buffer.count - position < options.maxRecordBytes else {
                    throw SluiceError(.parse, "record longer than \(options.maxRecordBytes) bytes (an unbalanced quote can cause this)",
                                      location: "\(location) line \(line)", fix: "check the quoting near this line")
                }
                if buffer.count - position > readSize { readSize = min(readSize * 2, 64 << 20) }
                try fill()
            case .malformed(let message, let end):
                batch.rejected.append(Rejection(reason: .parse, message: message, origin: line, raw: rawText(position, end)))
                line += countLines(position, end)
                position = end
            case .complete(let end, let lines):
                if spans.count != header.count {
                    if header.isEmpty, !options.header, batch.rowCount == 0 {
                        header = (1...spans.count).map { "column_\($0)" }
                        store = columnStore()
                        columns = store.columns
                        batch.names = header
                    } else {
                        batch.rejected.append(Rejection(
                            reason: .parse, message: "expected \(header.count) fields, found \(spans.count)",
                            origin: line, raw: rawText(position, end)))
                        position = end
                        line += lines
                        continue
                    }
                }
                bytes += appendRecord(spans, to: columns)
                batch.origins.append(line)
                position = end
                line += lines
            }
        }
        if batch.rowCount == 0, batch.rejected.isEmpty, position >= buffer.count, eof { return nil }
        batch.columns = store.take()
        let raw = reader.rawBytesRead
        batch.bytesRead = Int(raw - lastRawBytes)
        lastRawBytes = raw
        return batch
    }

    private enum Scan { case complete(end: Int, lines: Int), incomplete, malformed(String, end: Int) }

    /// Finds the fields of the record at `position` without copying them.
    private func scanRecord(_ spans: inout Spans) -> Scan {
        spans.removeAll()
        let delim = options.delimiter, quote = options.quote
        let eof = self.eof
        return buffer.withUnsafeBytes { p -> Scan in
            let n = p.count
            var i = position
            var lines = 0
            while true {
                if i < n, p[i] == quote {
                    // Quoted field: runs to the next quote that is not doubled.
                    var j = i + 1
                    var hasEscape = false
                    while true {
                        while j < n, p[j] != quote { if p[j] == 10 { lines += 1 }; j += 1 }
                        if j >= n { return .incomplete }
                        if j + 1 < n, p[j + 1] == quote { hasEscape = true; j += 2; continue }
                        if j + 1 >= n, !eof { return .incomplete }
                        break
                    }
                    spans.items.append(Span(start: i + 1, end: j, escaped: hasEscape, quoted: true))
                    i = j + 1
                    if i >= n { return eof ? .complete(end: n, lines: lines + 1) : .incomplete }
                    let c = p[i]
                    if c == delim { i += 1; continue }
                    if c == 10 { return .complete(end: i + 1, lines: lines + 1) }
                    if c == 13 {
                        if i + 1 >= n, !eof { return .incomplete }
                        return .complete(end: i + 1 < n && p[i + 1] == 10 ? i + 2 : i + 1, lines: lines + 1)
                    }
                    // Text after a closing quote: reject the record, resume after its line end.
                    var k = i
                    while k < n, p[k] != 10, p[k] != 13 { k += 1 }
                    if k + 1 >= n, !eof { return .incomplete }
                    let end = k < n && p[k] == 13 && k + 1 < n && p[k + 1] == 10 ? k + 2 : k + 1
                    return .malformed("unexpected character after a closing quote in field \(spans.count)", end: min(end, n))
                }
                var j = i
                // Eight bytes at a time while none of them ends the field, then byte by byte.
                let base = p.baseAddress!
                while j + 8 <= n {
                    let w = (base + j).loadUnaligned(as: UInt64.self)
                    if Self.hasByte(w, delim) || Self.hasByte(w, 10) || Self.hasByte(w, 13) { break }
                    j += 8
                }
                while j < n {
                    let c = p[j]
                    if c == delim || c == 10 || c == 13 { break }
                    j += 1
                }
                if j >= n, !eof { return .incomplete }
                spans.items.append(Span(start: i, end: j, escaped: false, quoted: false))
                if j >= n { return .complete(end: n, lines: lines + 1) }
                let c = p[j]
                if c == delim { i = j + 1; continue }
                if c == 10 { return .complete(end: j + 1, lines: lines + 1) }
                if j + 1 >= n, !eof { return .incomplete }
                return .complete(end: j + 1 < n && p[j + 1] == 10 ? j + 2 : j + 1, lines: lines + 1)
            }
        }
    }

    /// Whether any of the eight bytes of `w` is `byte` (the zero-byte test on `w` xor `byte`s).
    @inline(__always) static func hasByte(_ w: UInt64, _ byte: UInt8) -> Bool {
        let ones: UInt64 = 0x0101_0101_0101_0101, highs: UInt64 = 0x8080_8080_8080_8080
        let x = w ^ (ones &* UInt64(byte))
        return (x &- ones) & ~x & highs != 0
    }

    /// Empty columns for the header, sized like a batch read elsewhere when there was one.
    private func columnStore() -> RawColumnBuilder {
        let store = RawColumnBuilder()
        let sized = expectedColumnBytes.count == header.count
        for c in header.indices { store.addColumn(nulls: 0, rows: sized ? expectedRows : 0, bytes: sized ? expectedColumnBytes[c] : 0) }
        return store
    }

    private func appendRecord(_ spans: Spans, to columns: UnsafeMutablePointer<RawColumnBuilder.Buffers>) -> Int {
        var total = 0
        let quote = options.quote
        let nullValues = self.nullValues, emptyIsNull = self.emptyIsNull
        var unquoted: [UInt8] = []
        buffer.withUnsafeBytes { p in
            for f in 0..<spans.count {
                let s = spans.items[f].start, e = spans.items[f].end
                total += e - s
                if spans.items[f].escaped {
                    // Collapse doubled quotes: copy each run up to a quote, skip the quote's double.
                    unquoted.removeAll(keepingCapacity: true)
                    var k = s
                    while k < e {
                        guard let hit = memchr(p.baseAddress! + k, Int32(quote), e - k) else {
                            unquoted.append(contentsOf: UnsafeRawBufferPointer(rebasing: p[k..<e]))
                            break
                        }
                        let q = UnsafeRawPointer(hit) - p.baseAddress!
                        unquoted.append(contentsOf: UnsafeRawBufferPointer(rebasing: p[k...q]))
                        k = q + 2
                    }
                    unquoted.withUnsafeBytes { columns[f].append(.text, $0) }
                    continue
                }
                let v = UnsafeRawBufferPointer(rebasing: p[s..<e])
                if !spans.items[f].quoted, Self.isNull(v, nullValues, emptyIsNull) { columns[f].appendNull() } else { columns[f].append(.text, v) }
            }
        }
        return total
    }

    @inline(__always)
    private static func isNull(_ v: UnsafeRawBufferPointer, _ nullValues: [[UInt8]], _ emptyIsNull: Bool) -> Bool {
        if v.count == 0 { return emptyIsNull }
        for candidate in nullValues where candidate.count == v.count {
            if candidate.withUnsafeBytes({ $0.elementsEqual(v) }) { return true }
        }
        return false
    }

    private func fieldString(_ f: Int, _ spans: Spans) -> String {
        var bytes = Array(buffer[spans.items[f].start..<spans.items[f].end])
        if spans.items[f].escaped {
            var out: [UInt8] = []
            var k = 0
            while k < bytes.count { out.append(bytes[k]); k += bytes[k] == options.quote ? 2 : 1 }
            bytes = out
        }
        return String(decoding: bytes, as: UTF8.self)
    }

    private func rawText(_ from: Int, _ to: Int) -> String {
        var end = min(to, buffer.count, from + 10_000)
        while end > from, buffer[end - 1] == 10 || buffer[end - 1] == 13 { end -= 1 }
        return String(decoding: buffer[from..<end], as: UTF8.self)
    }

    private func countLines(_ from: Int, _ to: Int) -> Int {
        var n = 0
        for i in from..<min(to, buffer.count) where buffer[i] == 10 { n += 1 }
        return max(n, 1)
    }
}

extension String {
    func trimmingCharacters(in set: String) -> String {
        let chars = Set(set)
        var s = Substring(self)
        while let f = s.first, chars.contains(f) { s.removeFirst() }
        while let l = s.last, chars.contains(l) { s.removeLast() }
        return String(s)
    }
}
