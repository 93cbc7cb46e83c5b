#if canImport(Glibc)
import Glibc
#elseif canImport(Darwin)
import Darwin
#endif
import CShims
import SluiceCore

/// Turns untyped parsed columns into a typed `RecordBatch`.
///
/// Declared columns are converted to their declared type; a value that does not convert rejects
/// its record (reason `schema`, naming the field and the value). Other columns are inferred from
/// the data: the first batch decides (int64, double, bool, date, timestamp, json or string), and a
/// later value that does not fit widens the column (int64 → double → string, date → timestamp)
/// instead of being rejected. Inferred types stick for the rest of the run.
public final class BatchTyper {
    public let declared: Schema
    /// strptime-style formats for declared date/timestamp columns (`%Y-%m-%d %H:%M:%S%z`).
    public let formats: [String: String]
    public private(set) var inferred: [String: DataType] = [:]

    public init(declared: Schema, formats: [String: String] = [:], inferred: [String: DataType] = [:]) {
        self.declared = declared
        self.formats = formats
        self.inferred = inferred
    }

    /// Takes over the types a copy of this typer (same inferred types when it started) inferred
    /// while typing the next batches on another thread.
    public func adopt(_ inferred: [String: DataType]) { self.inferred = inferred }

    public func type(_ raw: RawBatch) -> (RecordBatch, [Rejection]) {
        var failures: [Int: (String, String)] = [:]
        var fields: [Field] = []
        var columns: [Column] = []
        for (c, name) in raw.names.enumerated() {
            let col = raw.columns[c]
            if let field = declared[name] {
                var out = Column(type: field.type, capacity: col.count)
                convert(col, to: field.type, format: formats[name], into: &out) { row, message in
                    if failures[row] == nil { failures[row] = (name, message) }
                }
                if !field.nullable {
                    for row in 0..<out.count where out.isNull(row) && failures[row] == nil {
                        failures[row] = (name, "\(name) is null but declared nullable: false")
                    }
                }
                fields.append(field)
                columns.append(out)
                continue
            }
            var type = inferred[name] ?? infer(col, jsonTyped: raw.jsonTyped)
            while true {
                var out = Column(type: type, capacity: col.count)
                var rowFailures: [(Int, String)] = []
                convert(col, to: type, format: nil, strict: true, into: &out) { row, message in rowFailures.append((row, message)) }
                if let (row, _) = rowFailures.first, type.physical != .binary {
                    let widened = type.widened(with: valueType(col, row, jsonTyped: raw.jsonTyped))
                    type = widened == type ? .string : widened
                    continue
                }
                // Text that cannot widen further (invalid UTF-8) rejects its record.
                for (row, message) in rowFailures where failures[row] == nil { failures[row] = (name, message) }
                inferred[name] = type
                fields.append(Field(name, type))
                columns.append(out)
                break
            }
        }
        var batch = RecordBatch(schema: Schema(fields), columns: columns, origins: raw.origins)
        var rejected = raw.rejected
        if !failures.isEmpty {
            var keep: [Int] = []
            keep.reserveCapacity(raw.rowCount - failures.count)
            for row in 0..<raw.rowCount {
                if let (field, message) = failures[row] {
                    rejected.append(Rejection(reason: .schema, field: field, message: message, origin: raw.origins[row],
                                              record: raw.record(at: row)))
                } else {
                    keep.append(row)
                }
            }
            batch = batch.taking(keep)
        }
        return (batch, rejected)
    }

    // MARK: Inference

    /// The narrowest type that holds every value of the column.
    func infer(_ col: RawColumn, jsonTyped: Bool) -> DataType {
        var type: DataType?
        for row in 0..<col.count where col.kinds[row] != RawKind.null.rawValue {
            let t = valueType(col, row, jsonTyped: jsonTyped)
            type = type.map { $0.widened(with: t) } ?? t
            if type == .string { break }
        }
        return type ?? .string
    }

    func valueType(_ col: RawColumn, _ row: Int, jsonTyped: Bool) -> DataType {
        let kind = RawKind(rawValue: col.kinds[row]) ?? .text
        return col.bytes.withUnsafeBytes { all in
            let v = UnsafeRawBufferPointer(rebasing: all[col.offsets[row]..<col.offsets[row + 1]])
            switch kind {
            case .null: return .string
            case .bool: return .bool
            case .nested: return .json
            case .number: return TextParsing.int64(v) != nil ? .int64 : .double
            case .text:
                if !jsonTyped {
                    if TextParsing.int64(v) != nil { return .int64 }
                    if looksNumeric(v), TextParsing.double(v) != nil { return .double }
                    if TextParsing.inferBool(v) != nil { return .bool }
                }
                if v.count == 10, TextParsing.date(v) != nil { return .date }
                if v.count >= 16, TextParsing.timestamp(v) != nil { return .timestamp }
                return .string
            }
        }
    }

    /// Excludes `nan`/`inf` words from number inference: a column of "NaN" strings stays text.
    private func looksNumeric(_ v: UnsafeRawBufferPointer) -> Bool {
        guard let c = v.first else { return false }
        return c &- 48 < 10 || ((c == 45 || c == 43 || c == 46) && v.count > 1 && (v[1] &- 48 < 10 || v[1] == 46))
    }

    // MARK: Conversion

    /// `col` as a text column sharing its buffers, when every null has an empty range (so the
    /// column's bytes hold exactly its values).
    private static func adoptingBuffers(_ col: RawColumn, type: DataType) -> Column? {
        let nullKind = RawKind.null.rawValue
        var validity = Bitmap()
        validity.reserveCapacity(col.count)
        for row in 0..<col.count {
            let isNull = col.kinds[row] == nullKind
            if isNull, col.offsets[row] != col.offsets[row + 1] { return nil }
            validity.append(!isNull)
        }
        return Column(type: type, validity: validity, offsets: col.offsets, bytes: col.bytes)
    }

    /// Converts every value of `col` to `type`, calling `fail(row, message)` for values that do not convert.
    /// `strict` (inferred columns): only exact matches convert, so that a timestamp in a date column
    /// widens the column instead of losing its time of day.
    func convert(_ col: RawColumn, to type: DataType, format: String?, strict: Bool = false, into out: inout Column, fail: (Int, String) -> Void) {
        col.bytes.withUnsafeBytes { all in
            @inline(__always) func value(_ row: Int) -> UnsafeRawBufferPointer {
                UnsafeRawBufferPointer(rebasing: all[col.offsets[row]..<col.offsets[row + 1]])
            }
            func bad(_ row: Int) {
                let text = String(decoding: value(row).prefix(200), as: UTF8.self)
                fail(row, "value '\(text)' is not a valid \(type)")
                out.appendNull()
            }
            let nullKind = RawKind.null.rawValue
            switch type {
            case .int64:
                for row in 0..<col.count {
                    if col.kinds[row] == nullKind { out.appendNull(); continue }
                    if let v = TextParsing.int64(value(row)) { out.append(int64: v) } else { bad(row) }
                }
            case .double:
                for row in 0..<col.count {
                    if col.kinds[row] == nullKind { out.appendNull(); continue }
                    if let v = TextParsing.double(value(row)) { out.append(double: v) } else { bad(row) }
                }
            case .bool:
                for row in 0..<col.count {
                    if col.kinds[row] == nullKind { out.appendNull(); continue }
                    if let v = TextParsing.bool(value(row)) { out.append(bool: v) } else { bad(row) }
                }
            case .decimal(let p, let s):
                for row in 0..<col.count {
                    if col.kinds[row] == nullKind { out.appendNull(); continue }
                    if let v = TextParsing.decimal(value(row), precision: p, scale: s) { out.append(decimal: v) }
                    else if col.kinds[row] == RawKind.number.rawValue, let d = TextParsing.double(value(row)),
                            case .decimal(let u, _)? = Value.double(d).converted(to: type) { out.append(decimal: u) }
                    else { bad(row) }
                }
            case .date:
                for row in 0..<col.count {
                    if col.kinds[row] == nullKind { out.appendNull(); continue }
                    let v = value(row)
                    if let format {
                        if let t = Self.strptimeMicros(v, format: format) { out.append(int32: Int32(Self.floorDiv(t, Temporal.microsPerDay))) } else { bad(row) }
                    } else if let d = TextParsing.date(v) { out.append(int32: d) }
                    else if !strict, let t = TextParsing.timestamp(v) { out.append(int32: Int32(Self.floorDiv(t, Temporal.microsPerDay))) }
                    else { bad(row) }
                }
            case .timestamp:
                for row in 0..<col.count {
                    if col.kinds[row] == nullKind { out.appendNull(); continue }
                    let v = value(row)
                    if let format {
                        if let t = Self.strptimeMicros(v, format: format) { out.append(int64: t) } else { bad(row) }
                    } else if let t = TextParsing.timestamp(v) { out.append(int64: t) }
                    else if col.kinds[row] == RawKind.number.rawValue, let e = TextParsing.double(v), let t = Self.epochMicros(e) {
                        out.append(int64: t)
                    } else { bad(row) }
                }
            case .string, .bytes:
                let checkUTF8 = type == .string && !UTF8Validation.isValid(all)
                if !checkUTF8, out.count == 0, let adopted = Self.adoptingBuffers(col, type: type) {
                    // The hot path for text: the raw buffers become the column's (no per-value copy).
                    out = adopted
                    return
                }
                for row in 0..<col.count {
                    if col.kinds[row] == nullKind { out.appendNull(); continue }
                    let v = value(row)
                    if checkUTF8, !UTF8Validation.isValid(v) {
                        fail(row, "value is not valid UTF-8 text (the file may use another encoding, such as Latin-1)")
                        out.appendNull()
                        continue
                    }
                    out.append(bytes: v)
                }
            case .json:
                var scratch: [UInt8] = []
                for row in 0..<col.count {
                    let kind = col.kinds[row]
                    if kind == nullKind { out.appendNull(); continue }
                    if kind == RawKind.text.rawValue {
                        scratch.removeAll(keepingCapacity: true)
                        JSONText.appendQuoted(value(row), to: &scratch)
                        scratch.withUnsafeBytes { out.append(bytes: $0) }
                    } else {
                        out.append(bytes: value(row))
                    }
                }
            }
        }
    }

    static func floorDiv(_ a: Int64, _ b: Int64) -> Int64 { a >= 0 ? a / b : -((-a + b - 1) / b) }

    /// Epoch numbers in JSON: seconds, or milliseconds / microseconds when the magnitude says so.
    static func epochMicros(_ e: Double) -> Int64? {
        guard e.isFinite else { return nil }
        let a = abs(e)
        let micros = a < 1e11 ? e * 1e6 : a < 1e14 ? e * 1e3 : e
        return Int64(exactly: micros.rounded())
    }

    /// A custom strptime format (only when configured; the ISO-8601 path is the fast one).
    static func strptimeMicros(_ v: UnsafeRawBufferPointer, format: String) -> Int64? {
        var text = Array(v)
        text.append(0)
        var tm = tm()
        let consumed: Bool = text.withUnsafeBufferPointer { buf in
            buf.baseAddress!.withMemoryRebound(to: CChar.self, capacity: buf.count) { cstr in
                guard let end = sluice_strptime(cstr, format, &tm) else { return false }
                return end.pointee == 0
            }
        }
        guard consumed else { return nil }
        let offset = Int64(tm.tm_gmtoff)
        let seconds = Int64(Temporal.days(year: Int(tm.tm_year) + 1900, month: Int(tm.tm_mon) + 1, day: Int(tm.tm_mday))) * 86_400
            + Int64(tm.tm_hour) * 3600 + Int64(tm.tm_min) * 60 + Int64(tm.tm_sec) - offset
        return seconds * Temporal.microsPerSecond
    }
}
