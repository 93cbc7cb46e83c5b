/// One value in the row view of a `RecordBatch`. Off the hot path only: expressions, quarantine
/// output, deduplication keys and tests use it; parsers and sinks work on columns.
public enum Value: Hashable, Sendable, CustomStringConvertible {
    case null
    case bool(Bool)
    case int64(Int64)
    case double(Double)
    case decimal(Int128, scale: Int)
    case string(String)
    case bytes([UInt8])
    case date(Int32)
    case timestamp(Int64)
    case json(String)

    public var isNull: Bool { if case .null = self { true } else { false } }

    /// Whether this value orders before `other`: numbers (and numeric text) as numbers, dates and
    /// timestamps as instants, anything else as text. For rules and profiles, whose values may
    /// come typed differently from one batch to the next.
    public func sorts(before other: Value) -> Bool {
        func number(_ v: Value) -> Double? {
            switch v {
            case .int64(let i): Double(i)
            case .double(let d): d
            case .decimal(let u, let s): DecimalText.toDouble(u, scale: s)
            case .string(let s): Double(s)
            default: nil
            }
        }
        if let x = number(self), let y = number(other) { return x < y }
        if case .timestamp(let x)? = converted(to: .timestamp), case .timestamp(let y)? = other.converted(to: .timestamp) { return x < y }
        return text < other.text
    }

    /// The column type that holds this value (string for null).
    public var dataType: DataType {
        switch self {
        case .null, .string: .string
        case .bool: .bool
        case .int64: .int64
        case .double: .double
        case .decimal(_, let scale): .decimal(precision: 38, scale: scale)
        case .bytes: .bytes
        case .date: .date
        case .timestamp: .timestamp
        case .json: .json
        }
    }

    /// The value as text: ISO-8601 for dates and timestamps, plain digits for decimals.
    public var text: String {
        switch self {
        case .null: ""
        case .bool(let b): b ? "true" : "false"
        case .int64(let i): String(i)
        case .double(let d): Value.formatDouble(d)
        case .decimal(let u, let s): DecimalText.format(u, scale: s)
        case .string(let s), .json(let s): s
        case .bytes(let b): Value.base64(b)
        case .date(let d): Temporal.formatDate(d)
        case .timestamp(let t): Temporal.formatTimestamp(t)
        }
    }

    public var description: String { isNull ? "null" : text }

    /// Shortest round-tripping text for a double; integral values keep a `.0` so they read back as double.
    public static func formatDouble(_ d: Double) -> String {
        if d.isNaN { return "NaN" }
        if d.isInfinite { return d < 0 ? "-Infinity" : "Infinity" }
        return d.description
    }

    /// Converts to `type`, parsing text where needed (the `cast` transform); nil when impossible.
    public func converted(to type: DataType) -> Value? {
        switch (self, type) {
        case (.null, _): return .null
        case (.bool, .bool), (.int64, .int64), (.double, .double), (.string, .string), (.bytes, .bytes),
             (.date, .date), (.timestamp, .timestamp), (.json, .json):
            return self
        case (.int64(let i), .double): return .double(Double(i))
        case (.double(let d), .int64):
            guard d.rounded() == d, let i = Int64(exactly: d) else { return nil }
            return .int64(i)
        case (.bool(let b), .int64): return .int64(b ? 1 : 0)
        case (.int64(let i), .bool): return .bool(i != 0)
        case (.int64(let i), .decimal(_, let s)):
            return DecimalText.rescale(Int128(i), from: 0, to: s).map { .decimal($0, scale: s) }
        case (.decimal(let u, let from), .decimal(let p, let s)):
            guard let r = DecimalText.rescale(u, from: from, to: s), String(r.magnitude).count <= p else { return nil }
            return .decimal(r, scale: s)
        case (.decimal(let u, let s), .double): return .double(DecimalText.toDouble(u, scale: s))
        case (.double(let d), .decimal(let p, let s)):
            return TextParsing.withBytes(String(format6(d, scale: s))) { TextParsing.decimal($0, precision: p, scale: s) }.map { .decimal($0, scale: s) }
        case (.date(let d), .timestamp): return .timestamp(Int64(d) * Temporal.microsPerDay)
        case (.timestamp(let t), .date):
            var days = t / Temporal.microsPerDay
            if t % Temporal.microsPerDay < 0 { days -= 1 }
            return .date(Int32(days))
        case (_, .string): return .string(text)
        case (_, .json): return .json(jsonText)
        case (.string(let s), _), (.json(let s), _): return Value.parse(s, as: type)
        default: return nil
        }
    }

    private func format6(_ d: Double, scale: Int) -> String {
        // Round half away from zero at `scale` digits, then print exactly that many.
        var m = d
        for _ in 0..<scale { m *= 10 }
        let r = m.rounded()
        guard let i = Int64(exactly: r) else { return "x" }
        return DecimalText.format(Int128(i), scale: scale)
    }

    /// Parses text as a value of `type` (nil when it is not one).
    public static func parse(_ text: String, as type: DataType) -> Value? {
        TextParsing.withBytes(text) { t -> Value? in
            switch type {
            case .bool: TextParsing.bool(t).map { .bool($0) }
            case .int64: TextParsing.int64(t).map { .int64($0) }
            case .double: TextParsing.double(t).map { .double($0) }
            case .decimal(let p, let s): TextParsing.decimal(t, precision: p, scale: s).map { .decimal($0, scale: s) }
            case .date: TextParsing.date(t).map { .date($0) } ?? TextParsing.timestamp(t).flatMap { Value.timestamp($0).converted(to: .date) }
            case .timestamp: TextParsing.timestamp(t).map { .timestamp($0) }
            case .string: .string(text)
            case .json: .json(text)
            case .bytes: .bytes(Array(text.utf8))
            }
        }
    }

    /// The value as a JSON fragment (strings quoted and escaped, json values verbatim).
    public var jsonText: String {
        switch self {
        case .null: return "null"
        case .bool, .int64: return text
        case .double(let d): return d.isFinite ? text : "null"
        case .decimal: return text
        case .json(let s): return s
        default: return JSONText.quoted(text)
        }
    }

    static func base64(_ bytes: [UInt8]) -> String {
        let table = Array("ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/".utf8)
        var out = [UInt8]()
        out.reserveCapacity((bytes.count + 2) / 3 * 4)
        var i = 0
        while i < bytes.count {
            let b0 = UInt32(bytes[i]), b1 = i + 1 < bytes.count ? UInt32(bytes[i + 1]) : 0, b2 = i + 2 < bytes.count ? UInt32(bytes[i + 2]) : 0
            let n = b0 << 16 | b1 << 8 | b2
            out.append(table[Int(n >> 18 & 63)])
            out.append(table[Int(n >> 12 & 63)])
            out.append(i + 1 < bytes.count ? table[Int(n >> 6 & 63)] : 61)
            out.append(i + 2 < bytes.count ? table[Int(n & 63)] : 61)
            i += 3
        }
        return String(decoding: out, as: UTF8.self)
    }
}

/// JSON string escaping shared by every JSON writer.
public enum JSONText {
    public static func quoted(_ s: String) -> String {
        var out = [UInt8]()
        var s = s
        s.withUTF8 { appendQuoted(UnsafeRawBufferPointer($0), to: &out) }
        return String(decoding: out, as: UTF8.self)
    }

    private static let hex = Array("0123456789abcdef".utf8)

    /// Appends `"…"` with JSON escapes for quotes, backslashes and control characters.
    public static func appendQuoted(_ t: UnsafeRawBufferPointer, to out: inout [UInt8]) {
        out.append(34)
        var runStart = 0
        for i in 0..<t.count {
            let c = t[i]
            guard c < 0x20 || c == 34 || c == 92 else { continue }
            if runStart < i { out.append(contentsOf: UnsafeRawBufferPointer(rebasing: t[runStart..<i])) }
            switch c {
            case 34: out.append(contentsOf: [92, 34])
            case 92: out.append(contentsOf: [92, 92])
            case 10: out.append(contentsOf: [92, 110])
            case 13: out.append(contentsOf: [92, 114])
            case 9: out.append(contentsOf: [92, 116])
            default: out.append(contentsOf: [92, 117, 48, 48, hex[Int(c >> 4)], hex[Int(c & 15)]])
            }
            runStart = i + 1
        }
        if runStart < t.count { out.append(contentsOf: UnsafeRawBufferPointer(rebasing: t[runStart..<t.count])) }
        out.append(34)
    }
}
