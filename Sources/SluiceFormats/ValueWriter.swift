import SluiceCore

/// Appends column values as text to a byte buffer, for the JSONL and CSV writers. Works from the
/// columns directly; only doubles go through `String`.
public enum ValueWriter {
    @inline(__always)
    public static func appendInt(_ v: Int64, to out: inout [UInt8]) {
        if v == 0 { out.append(48); return }
        var m = v.magnitude
        if v < 0 { out.append(45) }
        var tmp: (UInt64, UInt64, UInt64) = (0, 0, 0)   // 24 bytes of scratch for up to 20 digits
        let n = withUnsafeMutableBytes(of: &tmp) { b -> Int in
            var i = 24
            while m > 0 { i -= 1; b[i] = UInt8(48 + m % 10); m /= 10 }
            out.append(contentsOf: UnsafeRawBufferPointer(rebasing: b[i..<24]))
            return 24 - i
        }
        _ = n
    }

    static func appendPadded(_ v: Int, _ width: Int, to out: inout [UInt8]) {
        var digits = width
        var div = 1
        while digits > 1 { div *= 10; digits -= 1 }
        var x = v
        if x >= div * 10 { appendInt(Int64(x), to: &out); return }
        while div > 0 { out.append(UInt8(48 + x / div)); x %= div; div /= 10 }
    }

    public static func appendDate(_ days: Int32, to out: inout [UInt8]) {
        let (y, m, d) = Temporal.civil(days: Int(days))
        if y < 0 || y > 9999 { out.append(contentsOf: Temporal.formatDate(days).utf8); return }
        appendPadded(y, 4, to: &out); out.append(45)
        appendPadded(m, 2, to: &out); out.append(45)
        appendPadded(d, 2, to: &out)
    }

    public static func appendTimestamp(_ micros: Int64, to out: inout [UInt8]) {
        var days = micros / Temporal.microsPerDay
        var rem = micros % Temporal.microsPerDay
        if rem < 0 { rem += Temporal.microsPerDay; days -= 1 }
        appendDate(Int32(days), to: &out)
        let secs = Int(rem / Temporal.microsPerSecond), frac = Int(rem % Temporal.microsPerSecond)
        out.append(84)
        appendPadded(secs / 3600, 2, to: &out); out.append(58)
        appendPadded(secs / 60 % 60, 2, to: &out); out.append(58)
        appendPadded(secs % 60, 2, to: &out)
        if frac != 0 { out.append(46); appendPadded(frac, 6, to: &out) }
        out.append(90)
    }

    /// Appends the value as JSON (`null`, numbers bare, strings quoted, json verbatim).
    public static func appendJSON(_ column: Column, _ row: Int, to out: inout [UInt8]) {
        if column.isNull(row) { out.append(contentsOf: [110, 117, 108, 108]); return }
        switch column.type {
        case .int64: appendInt(column.int64s[row], to: &out)
        case .bool: out.append(contentsOf: column.bools[row] ? Array("true".utf8) : Array("false".utf8))
        case .double:
            let d = column.doubles[row]
            if d.isFinite { out.append(contentsOf: Value.formatDouble(d).utf8) } else { out.append(contentsOf: [110, 117, 108, 108]) }
        case .decimal(_, let s): out.append(contentsOf: DecimalText.format(column.decimals[row], scale: s).utf8)
        case .date: out.append(34); appendDate(column.int32s[row], to: &out); out.append(34)
        case .timestamp: out.append(34); appendTimestamp(column.int64s[row], to: &out); out.append(34)
        case .json: column.withBytes(at: row) { out.append(contentsOf: $0) }
        case .string: column.withBytes(at: row) { JSONText.appendQuoted($0, to: &out) }
        case .bytes: out.append(contentsOf: JSONText.quoted(column.value(at: row).text).utf8)
        }
    }

    /// Appends the value as plain text (CSV field content before quoting).
    public static func appendText(_ column: Column, _ row: Int, to out: inout [UInt8]) {
        if column.isNull(row) { return }
        switch column.type {
        case .int64: appendInt(column.int64s[row], to: &out)
        case .date: appendDate(column.int32s[row], to: &out)
        case .timestamp: appendTimestamp(column.int64s[row], to: &out)
        case .string, .json: column.withBytes(at: row) { out.append(contentsOf: $0) }
        default: out.append(contentsOf: column.value(at: row).text.utf8)
        }
    }
}

/// Writes batches as newline-delimited JSON objects.
public enum JSONLWriter {
    public static func append(_ batch: RecordBatch, to out: inout [UInt8]) {
        let keys: [[UInt8]] = batch.schema.fields.map { f in
            var k: [UInt8] = []
            TextParsing.withBytes(f.name) { JSONText.appendQuoted($0, to: &k) }
            k.append(58)
            return k
        }
        for row in 0..<batch.rowCount {
            out.append(123)
            for c in 0..<batch.columns.count {
                if c > 0 { out.append(44) }
                out.append(contentsOf: keys[c])
                ValueWriter.appendJSON(batch.columns[c], row, to: &out)
            }
            out.append(contentsOf: [125, 10])
        }
    }
}

/// Writes batches as RFC 4180 CSV; fields are quoted only when they need it.
public enum CSVWriter {
    public static func appendHeader(_ schema: Schema, to out: inout [UInt8]) {
        for (i, f) in schema.fields.enumerated() {
            if i > 0 { out.append(44) }
            appendField(Array(f.name.utf8), to: &out)
        }
        out.append(10)
    }

    public static func append(_ batch: RecordBatch, to out: inout [UInt8]) {
        var field: [UInt8] = []
        for row in 0..<batch.rowCount {
            for c in 0..<batch.columns.count {
                if c > 0 { out.append(44) }
                let col = batch.columns[c]
                if col.isNull(row) { continue }
                field.removeAll(keepingCapacity: true)
                ValueWriter.appendText(col, row, to: &field)
                // An empty string is written quoted so that it reads back as "" rather than null.
                if field.isEmpty { out.append(contentsOf: [34, 34]) } else { appendField(field, to: &out) }
            }
            out.append(10)
        }
    }

    static func appendField(_ field: [UInt8], to out: inout [UInt8]) {
        guard field.contains(where: { $0 == 44 || $0 == 34 || $0 == 10 || $0 == 13 }) else {
            out.append(contentsOf: field)
            return
        }
        out.append(34)
        for b in field {
            out.append(b)
            if b == 34 { out.append(34) }
        }
        out.append(34)
    }
}
