import Synchronization

/// Evaluates a checked syntax tree over a batch, one whole column per node: numbers and
/// comparisons run as loops over the typed buffers, text compares bytes. Results that are not
/// defined (division by zero, integer overflow, a failed cast) are NULL.
struct ExpressionEvaluator {
    let batch: RecordBatch
    let now: Int64
    var n: Int { batch.rowCount }

    func evaluate(_ node: Node) throws(ExpressionError) -> Column {
        switch node.kind {
        case .literal(let v):
            return constant(v)
        case .column(let name):
            guard let c = batch[name] else { return constant(.null) }
            if case .decimal(_, let scale) = c.type {
                return Column(type: .double, validity: c.validity, doubles: c.decimals.map { DecimalText.toDouble($0, scale: scale) })
            }
            return c
        case .negate(let a):
            let c = try evaluate(a)
            if c.type == .int64 { return Column(type: .int64, validity: c.validity, int64s: c.int64s.map { 0 &- $0 }) }
            if c.type == .double { return Column(type: .double, validity: c.validity, doubles: c.doubles.map { -$0 }) }
            return constant(.null)
        case .not(let a):
            let c = try bools(a)
            return Column(type: .bool, validity: c.validity, bools: c.bools.map { !$0 })
        case .binary(.and, let a, let b):
            return logic(true, try bools(a), try bools(b))
        case .binary(.or, let a, let b):
            return logic(false, try bools(a), try bools(b))
        case .binary(.concat, let a, let b):
            let (x, y) = (try evaluate(a), try evaluate(b))
            return strings(Self.valid(x, y)) { Self.text(x, $0) + Self.text(y, $0) }
        case .binary(let op, let a, let b) where op.isArithmetic:
            return arithmetic(op, try evaluate(a), try evaluate(b))
        case .binary(let op, let a, let b):
            return compare(op, try evaluate(a), try evaluate(b))
        case .isNull(let a, let negated):
            let c = try evaluate(a)
            return Column(type: .bool, validity: Bitmap(repeating: true, count: n), bools: (0..<n).map { c.isNull($0) != negated })
        case .inList(let a, let list, let negated):
            let x = try evaluate(a)
            var result = constantBool(false)
            for item in list { result = logic(false, result, compare(.equal, x, try evaluate(item))) }
            return negated ? not(result) : result
        case .like(let a, let pattern, let negated):
            let result = like(try evaluate(a), try evaluate(pattern))
            return negated ? not(result) : result
        case .between(let a, let low, let high, let negated):
            let x = try evaluate(a)
            let result = logic(true, compare(.greaterOrEqual, x, try evaluate(low)), compare(.lessOrEqual, x, try evaluate(high)))
            return negated ? not(result) : result
        case .caseWhen(let branches, let otherwise):
            var conditions: [Column] = [], values: [Column] = []
            for (w, t) in branches {
                conditions.append(try bools(w))
                values.append(try evaluate(t))
            }
            let fallback = try otherwise.map(evaluate) ?? constant(.null)
            let type = Self.commonType(values + [fallback])
            var out = Column(type: type, capacity: n)
            for row in 0..<n {
                let branch = conditions.firstIndex { !$0.isNull(row) && $0.bools[row] }
                out.append((branch.map { values[$0] } ?? fallback).value(at: row))
            }
            return out
        case .cast(let a, let type):
            let c = try evaluate(a)
            var out = Column(type: type, capacity: n)
            for row in 0..<n { out.append(c.value(at: row).converted(to: type) ?? .null) }
            return out
        case .call(let name, let args):
            return try call(name, args, at: node.position)
        }
    }

    // MARK: Building blocks

    private func constant(_ v: Value) -> Column {
        if v.isNull { return Column(type: .string, validity: Bitmap(repeating: false, count: n), offsets: Array(repeating: 0, count: n + 1), bytes: []) }
        var c = Column(type: v.dataType, capacity: n)
        for _ in 0..<n { c.append(v) }
        return c
    }

    private func constantBool(_ b: Bool) -> Column {
        Column(type: .bool, validity: Bitmap(repeating: true, count: n), bools: Array(repeating: b, count: n))
    }

    private func bools(_ node: Node) throws(ExpressionError) -> Column {
        let c = try evaluate(node)
        if c.type == .bool { return c }
        // Only a NULL-typed operand gets here (the checker allows nothing else).
        return Column(type: .bool, validity: Bitmap(repeating: false, count: n), bools: Array(repeating: false, count: n))
    }

    private func not(_ c: Column) -> Column { Column(type: .bool, validity: c.validity, bools: c.bools.map { !$0 }) }

    /// SQL three-valued AND (`isAnd`) or OR.
    private func logic(_ isAnd: Bool, _ a: Column, _ b: Column) -> Column {
        var values = [Bool](repeating: false, count: n)
        var validity = Bitmap()
        validity.reserveCapacity(n)
        for row in 0..<n {
            let x: Bool? = a.isNull(row) ? nil : a.bools[row]
            let y: Bool? = b.isNull(row) ? nil : b.bools[row]
            let r: Bool?
            if isAnd {
                r = x == false || y == false ? false : (x == nil || y == nil ? nil : true)
            } else {
                r = x == true || y == true ? true : (x == nil || y == nil ? nil : false)
            }
            values[row] = r ?? false
            validity.append(r != nil)
        }
        return Column(type: .bool, validity: validity, bools: values)
    }

    private static func valid(_ a: Column, _ b: Column) -> Bitmap { a.validity & b.validity }

    private static func text(_ c: Column, _ row: Int) -> String {
        c.type.physical == .binary && c.type != .bytes ? c.string(at: row) : c.value(at: row).text
    }

    /// A text column with `value(row)` where `validity` is set.
    private func strings(_ validity: Bitmap, _ value: (Int) -> String) -> Column {
        var out = Column(type: .string, capacity: n)
        for row in 0..<n {
            if validity.unsetCount > 0 && !validity[row] { out.appendNull() } else { out.append(string: value(row)) }
        }
        return out
    }

    private static func doubles(_ c: Column) -> [Double] {
        switch c.type {
        case .double: c.doubles
        case .int64: c.int64s.map(Double.init)
        default: Array(repeating: 0, count: c.count)
        }
    }

    private static func isAllNull(_ c: Column) -> Bool { c.count > 0 && c.nullCount == c.count }

    private static func commonType(_ columns: [Column]) -> DataType {
        let typed = columns.filter { !isAllNull($0) }.map(\.type)
        guard var t = typed.first else { return .string }
        for other in typed.dropFirst() { t = t.widened(with: other) }
        return t
    }

    // MARK: Arithmetic and comparison

    private func arithmetic(_ op: BinaryOperator, _ a: Column, _ b: Column) -> Column {
        var validity = Self.valid(a, b)
        if a.type == .int64, b.type == .int64, op != .divide {
            var out = [Int64](repeating: 0, count: n)
            var overflowed: [Int] = []
            a.int64s.withUnsafeBufferPointer { x in
                b.int64s.withUnsafeBufferPointer { y in
                    for row in 0..<n {
                        let (r, o): (Int64, Bool)
                        switch op {
                        case .add: (r, o) = x[row].addingReportingOverflow(y[row])
                        case .subtract: (r, o) = x[row].subtractingReportingOverflow(y[row])
                        case .multiply: (r, o) = x[row].multipliedReportingOverflow(by: y[row])
                        default: (r, o) = y[row] == 0 ? (0, true) : x[row].remainderReportingOverflow(dividingBy: y[row])
                        }
                        out[row] = r
                        if o { overflowed.append(row) }
                    }
                }
            }
            if !overflowed.isEmpty { validity = Self.clearing(validity, overflowed) }
            return Column(type: .int64, validity: validity, int64s: out)
        }
        if Self.isAllNull(a) || Self.isAllNull(b) || !(a.type == .int64 || a.type == .double) || !(b.type == .int64 || b.type == .double) {
            return Column(type: .double, validity: Bitmap(repeating: false, count: n), doubles: Array(repeating: 0, count: n))
        }
        let x = Self.doubles(a), y = Self.doubles(b)
        var out = [Double](repeating: 0, count: n)
        var undefined: [Int] = []
        for row in 0..<n {
            switch op {
            case .add: out[row] = x[row] + y[row]
            case .subtract: out[row] = x[row] - y[row]
            case .multiply: out[row] = x[row] * y[row]
            case .divide:
                if y[row] == 0 { undefined.append(row) } else { out[row] = x[row] / y[row] }
            default:
                if y[row] == 0 { undefined.append(row) } else { out[row] = x[row].truncatingRemainder(dividingBy: y[row]) }
            }
        }
        if !undefined.isEmpty { validity = Self.clearing(validity, undefined) }
        return Column(type: .double, validity: validity, doubles: out)
    }

    private static func clearing(_ validity: Bitmap, _ rows: [Int]) -> Bitmap {
        var words = validity.unsetCount == 0 && validity.count > 0 ? Bitmap(repeating: true, count: validity.count).words : validity.words
        for row in rows { words[row >> 6] &= ~(1 << UInt64(row & 63)) }
        return Bitmap(words: words, count: validity.count)
    }

    /// -1, 0, 1 per row (meaningful where both sides are valid).
    private func order(_ a: Column, _ b: Column) -> [Int8] {
        var out = [Int8](repeating: 0, count: n)
        func fill<T: Comparable>(_ x: [T], _ y: [T]) {
            for row in 0..<n { out[row] = x[row] < y[row] ? -1 : (x[row] > y[row] ? 1 : 0) }
        }
        switch (a.type.physical, b.type.physical) {
        case _ where a.type.isTemporalType || b.type.isTemporalType:
            fill(Self.micros(a), Self.micros(b))
        case (.int64, .int64):
            fill(a.int64s, b.int64s)
        case (.int64, .double), (.double, .int64), (.double, .double):
            fill(Self.doubles(a), Self.doubles(b))
        case (.bool, .bool):
            for row in 0..<n { out[row] = a.bools[row] == b.bools[row] ? 0 : (b.bools[row] ? -1 : 1) }
        case (.binary, .binary):
            for row in 0..<n where !a.isNull(row) && !b.isNull(row) {
                out[row] = a.withBytes(at: row) { x in b.withBytes(at: row) { y in Int8(ByteOrder.compare(x, y).signum()) } }
            }
        default:
            break
        }
        return out
    }

    private func compare(_ op: BinaryOperator, _ a: Column, _ b: Column) -> Column {
        if Self.isAllNull(a) || Self.isAllNull(b) { return Column(type: .bool, validity: Bitmap(repeating: false, count: n), bools: Array(repeating: false, count: n)) }
        var validity = Self.valid(a, b)
        // A text literal compared with a date or timestamp reads as one (checked by the checker).
        var unparsable: [Int] = []
        if a.type.isTemporalType != b.type.isTemporalType {
            let text = a.type.isTemporalType ? b : a
            for row in 0..<n where !text.isNull(row) && Value.parse(text.string(at: row), as: .timestamp) == nil { unparsable.append(row) }
        }
        if !unparsable.isEmpty { validity = Self.clearing(validity, unparsable) }
        let ordering = order(a, b)
        let values: [Bool] = ordering.map { o in
            switch op {
            case .equal: o == 0
            case .notEqual: o != 0
            case .less: o < 0
            case .lessOrEqual: o <= 0
            case .greater: o > 0
            default: o >= 0
            }
        }
        return Column(type: .bool, validity: validity, bools: values)
    }

    /// Dates, timestamps and ISO 8601 text as µs since the epoch.
    private static func micros(_ c: Column) -> [Int64] {
        switch c.type {
        case .timestamp: return c.int64s
        case .date: return c.int32s.map { Int64($0) * Temporal.microsPerDay }
        default:
            return (0..<c.count).map { row in
                guard !c.isNull(row), case .timestamp(let t)? = Value.parse(c.string(at: row), as: .timestamp) else { return 0 }
                return t
            }
        }
    }

    // MARK: LIKE

    private func like(_ a: Column, _ pattern: Column) -> Column {
        var values = [Bool](repeating: false, count: n)
        let validity = Self.valid(a, pattern)
        for row in 0..<n where !a.isNull(row) && !pattern.isNull(row) {
            values[row] = a.withBytes(at: row) { s in pattern.withBytes(at: row) { p in Self.likeMatch(Array(s), Array(p)) } }
        }
        return Column(type: .bool, validity: validity, bools: values)
    }

    /// `%` any run of characters, `_` one character (a UTF-8 sequence); everything else literal.
    static func likeMatch(_ s: [UInt8], _ p: [UInt8]) -> Bool {
        var si = 0, pi = 0
        var star: Int?, resume = 0
        func charEnd(_ i: Int) -> Int {
            var j = i + 1
            while j < s.count, s[j] & 0xC0 == 0x80 { j += 1 }
            return j
        }
        while si < s.count {
            if pi < p.count, p[pi] == UInt8(ascii: "_") {
                si = charEnd(si); pi += 1
            } else if pi < p.count, p[pi] == UInt8(ascii: "%") {
                star = pi; pi += 1; resume = si
            } else if pi < p.count, p[pi] == s[si] {
                si += 1; pi += 1
            } else if let st = star {
                pi = st + 1
                resume = charEnd(resume)
                si = resume
            } else {
                return false
            }
        }
        while pi < p.count, p[pi] == UInt8(ascii: "%") { pi += 1 }
        return pi == p.count
    }

    // MARK: Functions

    private func call(_ name: String, _ args: [Node], at: Int) throws(ExpressionError) -> Column {
        var columns: [Column] = []
        for a in args { columns.append(try evaluate(a)) }
        func textMap(_ body: (String) -> String) -> Column {
            let c = columns[0]
            return strings(c.validity) { body(Self.text(c, $0)) }
        }
        func ints(_ validity: Bitmap, _ value: (Int) -> Int64) -> Column {
            Column(type: .int64, validity: validity, int64s: (0..<n).map { validity.unsetCount > 0 && !validity[$0] ? 0 : value($0) })
        }
        switch name {
        case "lower": return textMap { $0.lowercased() }
        case "upper": return textMap { $0.uppercased() }
        case "trim": return textMap(Self.trimmed)
        case "length":
            let c = columns[0]
            return ints(c.validity) { Int64(Self.text(c, $0).count) }
        case "substr":
            let (s, start) = (columns[0], columns[1])
            let length = columns.count > 2 ? columns[2] : nil
            let validity = length.map { Self.valid(s, start) & $0.validity } ?? Self.valid(s, start)
            return strings(validity) { row in
                let chars = Array(Self.text(s, row))
                let from = max(0, Int(start.int64s[row]) - 1)
                let count = length.map { max(0, Int($0.int64s[row])) } ?? chars.count
                guard from < chars.count else { return "" }
                return String(chars[from..<min(chars.count, from + count)])
            }
        case "split_part":
            let (s, d, k) = (columns[0], columns[1], columns[2])
            return strings(Self.valid(s, d) & k.validity) { row in
                let delimiter = Self.text(d, row)
                let index = Int(k.int64s[row])
                guard !delimiter.isEmpty, index >= 1 else { return "" }
                let parts = Self.text(s, row).splitting(by: delimiter)
                return index <= parts.count ? parts[index - 1] : ""
            }
        case "coalesce":
            let type = Self.commonType(columns)
            var out = Column(type: type, capacity: n)
            for row in 0..<n { out.append(columns.first { !$0.isNull(row) }?.value(at: row) ?? .null) }
            return out
        case "concat":
            return strings(Bitmap(repeating: true, count: n)) { row in
                columns.map { $0.isNull(row) ? "" : Self.text($0, row) }.joined()
            }
        case "regexp_matches":
            guard case .literal(.string(let pattern)) = args[1].kind, let regex = RegexCache.compile(pattern) else {
                throw ExpressionError("not a valid regular expression", at: args[1].position)
            }
            let c = columns[0]
            let binary = c.type.physical == .binary
            return Column(type: .bool, validity: c.validity, bools: (0..<n).map { row in
                !c.isNull(row) && (binary ? c.withBytes(at: row) { regex.matches($0) } : regex.matches(Self.text(c, row)))
            })
        case "abs":
            let c = columns[0]
            if c.type == .int64 {
                var validity = c.validity
                let minRows = (0..<n).filter { c.int64s[$0] == .min }
                if !minRows.isEmpty { validity = Self.clearing(validity, minRows) }
                return Column(type: .int64, validity: validity, int64s: c.int64s.map { $0 == .min ? 0 : abs($0) })
            }
            return Column(type: .double, validity: c.validity, doubles: Self.doubles(c).map { abs($0) })
        case "round":
            let c = columns[0]
            let digits = columns.count > 1 ? columns[1] : nil
            let validity = digits.map { Self.valid(c, $0) } ?? c.validity
            let x = Self.doubles(c)
            return Column(type: .double, validity: validity, doubles: (0..<n).map { row in
                let d = digits.map { Int($0.int64s[row]) } ?? 0
                var scale = 1.0
                for _ in 0..<min(abs(d), 308) { scale *= 10 }
                return d >= 0 ? (x[row] * scale).rounded() / scale : (x[row] / scale).rounded() * scale
            })
        case "now":
            return Column(type: .timestamp, validity: Bitmap(repeating: true, count: n), int64s: Array(repeating: now, count: n))
        default:
            let part: String
            let c: Column
            if name == "date_part", case .literal(.string(let p)) = args[0].kind {
                part = p.lowercased()
                c = columns[1]
            } else {
                part = name
                c = columns[0]
            }
            let micros = Self.micros(c)
            return ints(c.validity) { row in
                let t = Temporal.components(micros[row])
                switch part {
                case "year": return Int64(t.year)
                case "month": return Int64(t.month)
                case "day": return Int64(t.day)
                case "hour": return Int64(t.hour)
                case "minute": return Int64(t.minute)
                default: return Int64(t.second)
                }
            }
        }
    }

    static func trimmed(_ s: String) -> String {
        var slice = Substring(s)
        while let f = slice.first, f.isWhitespace { slice.removeFirst() }
        while let l = slice.last, l.isWhitespace { slice.removeLast() }
        return String(slice)
    }
}

extension DataType {
    var isTemporalType: Bool { self == .date || self == .timestamp }
}

extension String {
    /// Split on every occurrence of `separator` (which is not empty), keeping empty parts.
    func splitting(by separator: String) -> [String] {
        var parts: [String] = []
        var rest = Substring(self)
        while let r = rest.firstRange(of: separator) {
            parts.append(String(rest[..<r.lowerBound]))
            rest = rest[r.upperBound...]
        }
        parts.append(String(rest))
        return parts
    }
}

/// Regular expressions compiled once per pattern: `ByteRegex` where it supports the pattern, the
/// standard library's `Regex` otherwise.
final class RegexCache: @unchecked Sendable {
    private let fast: ByteRegex?
    private let full: Regex<AnyRegexOutput>?
    private init(fast: ByteRegex?, full: Regex<AnyRegexOutput>?) {
        self.fast = fast
        self.full = full
    }

    private static let compiled = Mutex<[String: RegexCache]>([:])

    static func compile(_ pattern: String) -> RegexCache? {
        compiled.withLock { cache in
            if let r = cache[pattern] { return r }
            // Validity is the full engine's verdict, so both accept the same patterns.
            guard let regex = try? Regex(pattern) else { return nil }
            let r = RegexCache(fast: ByteRegex(pattern), full: regex)
            cache[pattern] = r
            return r
        }
    }

    static func isValid(_ pattern: String) -> Bool { compile(pattern) != nil }

    func matches(_ s: String) -> Bool {
        var copy = s
        return copy.withUTF8 { matches(UnsafeRawBufferPointer($0)) }
    }

    /// UTF-8 text, without making a `String` when the fast engine applies.
    func matches(_ bytes: UnsafeRawBufferPointer) -> Bool {
        if let fast, !fast.asciiOnly || !bytes.contains(where: { $0 >= 0x80 }) { return fast.matches(bytes) }
        return full.map { String(decoding: bytes, as: UTF8.self).contains($0) } ?? false
    }
}
