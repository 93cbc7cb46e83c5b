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
                let out = convert(col, to: field.type, format: formats[name]) { row, message in
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
                var rowFailures: [(Int, String)] = []
                let out = convert(col, to: type, format: nil, strict: true) { row, message in rowFailures.append((row, message)) }
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
        let null = RawKind.null.rawValue
        var words = [UInt64](repeating: 0, count: (col.count + 63) / 64)
        let adoptable = col.kinds.withUnsafeBufferPointer { kinds in
            col.offsets.withUnsafeBufferPointer { offsets in
                words.withUnsafeMutableBufferPointer { words in
                    for row in 0..<kinds.count {
                        if kinds[row] != null {
                            words[row >> 6] |= 1 << UInt64(row & 63)
                        } else if offsets[row] != offsets[row + 1] {
                            return false
                        }
                    }
                    return true
                }
            }
        }
        guard adoptable else { return nil }
        return Column(type: type, validity: Bitmap(words: words, count: col.count), offsets: col.offsets, bytes: col.bytes)
    }

    /// Converts every value of `col` to `type`, calling `fail(row, message)` for values that do not convert
    /// (they become nulls). `strict` (inferred columns): only exact matches convert, so that a
    /// timestamp in a date column widens the column instead of losing its time of day.
    func convert(_ col: RawColumn, to type: DataType, format: String?, strict: Bool = false, fail: (Int, String) -> Void) -> Column {
        col.bytes.withUnsafeBytes { all in
            func bad(_ row: Int) {
                let text = String(decoding: all[col.offsets[row]..<col.offsets[row + 1]].prefix(200), as: UTF8.self)
                fail(row, "value '\(text)' is not a valid \(type)")
            }
            let number = RawKind.number.rawValue
            switch type {
            case .int64:
                let (values, validity) = Self.fixedWidth(col, all, bad) { _, v in TextParsing.int64(v) }
                return Column(type: type, validity: validity, int64s: values)
            case .double:
                let (values, validity) = Self.fixedWidth(col, all, bad) { _, v in TextParsing.double(v) }
                return Column(type: type, validity: validity, doubles: values)
            case .bool:
                let (values, validity) = Self.fixedWidth(col, all, bad) { _, v in TextParsing.bool(v) }
                return Column(type: type, validity: validity, bools: values)
            case .decimal(let p, let s):
                let (values, validity) = Self.fixedWidth(col, all, bad) { kind, v -> Int128? in
                    if let d = TextParsing.decimal(v, precision: p, scale: s) { return d }
                    // A JSON number in exponent form (1.5e3) goes through double.
                    guard kind == number, let d = TextParsing.double(v), case .decimal(let u, _)? = Value.double(d).converted(to: type) else { return nil }
                    return u
                }
                return Column(type: type, validity: validity, decimals: values)
            case .date:
                let (values, validity) = Self.fixedWidth(col, all, bad) { _, v -> Int32? in
                    if let format { return Self.strptimeMicros(v, format: format).map { Int32(Self.floorDiv($0, Temporal.microsPerDay)) } }
                    if let d = TextParsing.date(v) { return d }
                    guard !strict, let t = TextParsing.timestamp(v) else { return nil }
                    return Int32(Self.floorDiv(t, Temporal.microsPerDay))
                }
                return Column(type: type, validity: validity, int32s: values)
            case .timestamp:
                let (values, validity) = Self.fixedWidth(col, all, bad) { kind, v -> Int64? in
                    if let format { return Self.strptimeMicros(v, format: format) }
                    if let t = TextParsing.timestamp(v) { return t }
                    guard kind == number, let e = TextParsing.double(v) else { return nil }
                    return Self.epochMicros(e)
                }
                return Column(type: type, validity: validity, int64s: values)
            case .string, .bytes:
                let checkUTF8 = type == .string && !UTF8Validation.isValid(all)
                if !checkUTF8, let adopted = Self.adoptingBuffers(col, type: type) {
                    // The hot path for text: the raw buffers become the column's (no per-value copy).
                    return adopted
                }
                var out = Column(type: type, capacity: col.count)
                for row in 0..<col.count {
                    if col.kinds[row] == RawKind.null.rawValue { out.appendNull(); continue }
                    let v = UnsafeRawBufferPointer(rebasing: all[col.offsets[row]..<col.offsets[row + 1]])
                    if checkUTF8, !UTF8Validation.isValid(v) {
                        fail(row, "value is not valid UTF-8 text (the file may use another encoding, such as Latin-1)")
                        out.appendNull()
                        continue
                    }
                    out.append(bytes: v)
                }
                return out
            case .json:
                var out = Column(type: type, capacity: col.count)
                var scratch: [UInt8] = []
                for row in 0..<col.count {
                    let kind = col.kinds[row]
                    if kind == RawKind.null.rawValue { out.appendNull(); continue }
                    let v = UnsafeRawBufferPointer(rebasing: all[col.offsets[row]..<col.offsets[row + 1]])
                    if kind == RawKind.text.rawValue {
                        scratch.removeAll(keepingCapacity: true)
                        JSONText.appendQuoted(v, to: &scratch)
                        scratch.withUnsafeBytes { out.append(bytes: $0) }
                    } else {
                        out.append(bytes: v)
                    }
                }
                return out
            }
        }
    }

    /// A fixed-width column's values and validity, each value converted by `parse(kind, bytes)`
    /// straight into buffers of the column's length (nulls and failures are zero and unset; a
    /// failure is reported to `bad`). No append per value: its checks would cost more than the
    /// conversion.
    @inline(__always)
    private static func fixedWidth<T>(_ col: RawColumn, _ all: UnsafeRawBufferPointer, _ bad: (Int) -> Void,
                                      _ parse: (UInt8, UnsafeRawBufferPointer) -> T?) -> ([T], Bitmap) {
        let n = col.count
        var words = [UInt64](repeating: 0, count: (n + 63) / 64)
        let values = [T](unsafeUninitializedCapacity: n) { buffer, initialized in
            col.kinds.withUnsafeBufferPointer { kinds in
                col.offsets.withUnsafeBufferPointer { offsets in
                    words.withUnsafeMutableBufferPointer { words in
                        let null = RawKind.null.rawValue
                        for row in 0..<n {
                            let kind = kinds[row]
                            if kind != null, let v = parse(kind, UnsafeRawBufferPointer(rebasing: all[offsets[row]..<offsets[row + 1]])) {
                                (buffer.baseAddress! + row).initialize(to: v)
                                words[row >> 6] |= 1 << UInt64(row & 63)
                            } else {
                                // Zero bytes are a valid zero of every fixed-width type.
                                UnsafeMutableRawPointer(buffer.baseAddress! + row).initializeMemory(as: UInt8.self, repeating: 0, count: MemoryLayout<T>.stride)
                                if kind != null { bad(row) }
                            }
                        }
                    }
                }
            }
            initialized = n
        }
        return (values, Bitmap(words: words, count: n))
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
