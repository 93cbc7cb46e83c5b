/// The types the expression language reasons with. Decimals compute as doubles; JSON reads as text.
enum ExprType: Equatable, CustomStringConvertible {
    case null, bool, int, double, string, bytes, date, timestamp
    /// A column whose type is not known yet (inferred from the data): checked when it arrives.
    case unknown

    init(_ type: DataType) {
        switch type {
        case .bool: self = .bool
        case .int64: self = .int
        case .double, .decimal: self = .double
        case .string, .json: self = .string
        case .bytes: self = .bytes
        case .date: self = .date
        case .timestamp: self = .timestamp
        }
    }

    var dataType: DataType? {
        switch self {
        case .null, .string: .string
        case .bool: .bool
        case .int: .int64
        case .double: .double
        case .bytes: .bytes
        case .date: .date
        case .timestamp: .timestamp
        case .unknown: nil
        }
    }

    var isNumber: Bool { self == .int || self == .double }
    var isTemporal: Bool { self == .date || self == .timestamp }

    var description: String {
        switch self {
        case .null: "null"
        case .bool: "bool"
        case .int: "int64"
        case .double: "a decimal number"
        case .string: "string"
        case .bytes: "bytes"
        case .date: "date"
        case .timestamp: "timestamp"
        case .unknown: "unknown"
        }
    }
}

/// Type-checks a syntax tree. `columnType` gives a column's declared type (`.unknown` when not
/// known); at run time the batch's types (`.null` for a column the batch lacks).
struct ExpressionChecker {
    let columnType: (String) -> ExprType

    /// name → allowed argument counts.
    static let signatures: [String: ClosedRange<Int>] = [
        "lower": 1...1, "upper": 1...1, "trim": 1...1, "length": 1...1, "substr": 2...3, "split_part": 3...3,
        "coalesce": 1...64, "regexp_matches": 2...2, "concat": 1...64, "abs": 1...1, "round": 1...2, "now": 0...0,
        "year": 1...1, "month": 1...1, "day": 1...1, "hour": 1...1, "minute": 1...1, "second": 1...1, "date_part": 2...2,
    ]
    static let dateParts = ["year", "month", "day", "hour", "minute", "second"]

    func type(of node: Node) throws(ExpressionError) -> ExprType {
        let at = node.position
        switch node.kind {
        case .literal(let v):
            switch v {
            case .null: return .null
            case .bool: return .bool
            case .int64: return .int
            case .double, .decimal: return .double
            case .string, .json: return .string
            case .bytes: return .bytes
            case .date: return .date
            case .timestamp: return .timestamp
            }
        case .column(let name):
            return columnType(name)
        case .negate(let a):
            let t = try type(of: a)
            guard t.isNumber || t == .null || t == .unknown else { throw ExpressionError("cannot negate \(t)", at: at) }
            return t
        case .not(let a):
            try expectBool(a, "NOT")
            return .bool
        case .binary(let op, let a, let b):
            let (ta, tb) = (try type(of: a), try type(of: b))
            switch op {
            case .and, .or:
                try expectBool(a, op.rawValue)
                try expectBool(b, op.rawValue)
                return .bool
            case .concat:
                return .string
            case _ where op.isArithmetic:
                for (t, side) in [(ta, a), (tb, b)] where !(t.isNumber || t == .null || t == .unknown) {
                    throw ExpressionError("'\(op.rawValue)' needs numbers, but \(describe(side)) is \(t)"
                                          + (t == .string ? " (use cast(… AS double), or || to join text)" : ""), at: side.position)
                }
                if op == .divide { return .double }
                if ta == .unknown || tb == .unknown { return .unknown }
                return ta == .double || tb == .double ? .double : .int
            default:
                try comparable(a, ta, b, tb, at: at)
                return .bool
            }
        case .isNull(let a, _):
            _ = try type(of: a)
            return .bool
        case .inList(let a, let list, _):
            let ta = try type(of: a)
            for item in list { try comparable(a, ta, item, try type(of: item), at: item.position) }
            return .bool
        case .like(let a, let pattern, _):
            for side in [a, pattern] {
                let t = try type(of: side)
                guard t == .string || t == .null || t == .unknown else { throw ExpressionError("LIKE compares text, but \(describe(side)) is \(t)", at: side.position) }
            }
            return .bool
        case .between(let a, let low, let high, _):
            let ta = try type(of: a)
            try comparable(a, ta, low, try type(of: low), at: low.position)
            try comparable(a, ta, high, try type(of: high), at: high.position)
            return .bool
        case .caseWhen(let branches, let otherwise):
            var result = ExprType.null
            for (condition, value) in branches {
                try expectBool(condition, "WHEN")
                result = try common(result, try type(of: value), at: value.position)
            }
            if let otherwise { result = try common(result, try type(of: otherwise), at: otherwise.position) }
            return result
        case .cast(let a, let type):
            _ = try self.type(of: a)
            return ExprType(type)
        case .call(let name, let args):
            return try call(name, args, at: at)
        }
    }

    private func call(_ name: String, _ args: [Node], at: Int) throws(ExpressionError) -> ExprType {
        guard let arity = Self.signatures[name] else {
            throw ExpressionError("unknown function \(name)() (functions: \(Self.signatures.keys.sorted().joined(separator: ", ")))", at: at)
        }
        guard arity.contains(args.count) else {
            let expected = arity.lowerBound == arity.upperBound ? "\(arity.lowerBound)" : "\(arity.lowerBound) to \(arity.upperBound)"
            throw ExpressionError("\(name)() takes \(expected) argument\(arity.upperBound == 1 ? "" : "s"), not \(args.count)", at: at)
        }
        var types: [ExprType] = []
        for a in args { types.append(try type(of: a)) }
        func expect(_ i: Int, _ ok: (ExprType) -> Bool, _ what: String) throws(ExpressionError) {
            let t = types[i]
            guard ok(t) || t == .null || t == .unknown else {
                throw ExpressionError("\(name)() needs \(what) as argument \(i + 1), but \(describe(args[i])) is \(t)", at: args[i].position)
            }
        }
        let text: (ExprType) -> Bool = { $0 == .string }
        switch name {
        case "lower", "upper", "trim":
            try expect(0, text, "text")
            return .string
        case "length":
            try expect(0, text, "text")
            return .int
        case "substr":
            try expect(0, text, "text")
            for i in 1..<args.count { try expect(i, { $0 == .int }, "an integer") }
            return .string
        case "split_part":
            try expect(0, text, "text")
            try expect(1, text, "text")
            try expect(2, { $0 == .int }, "an integer")
            return .string
        case "regexp_matches":
            try expect(0, text, "text")
            guard case .literal(.string(let pattern)) = args[1].kind else {
                throw ExpressionError("regexp_matches() needs the pattern as a '…' literal", at: args[1].position)
            }
            if !RegexCache.isValid(pattern) { throw ExpressionError("'\(pattern)' is not a valid regular expression", at: args[1].position) }
            return .bool
        case "coalesce":
            var result = ExprType.null
            for (i, t) in types.enumerated() { result = try common(result, t, at: args[i].position) }
            return result
        case "concat":
            return .string
        case "abs":
            try expect(0, { $0.isNumber }, "a number")
            return types[0]
        case "round":
            try expect(0, { $0.isNumber }, "a number")
            if args.count == 2 { try expect(1, { $0 == .int }, "an integer") }
            return .double
        case "now":
            return .timestamp
        case "date_part":
            guard case .literal(.string(let part)) = args[0].kind, Self.dateParts.contains(part.lowercased()) else {
                throw ExpressionError("date_part() needs one of \(Self.dateParts.map { "'\($0)'" }.joined(separator: ", ")) first", at: args[0].position)
            }
            try expect(1, { $0.isTemporal }, "a date or timestamp")
            return .int
        default:   // year … second
            try expect(0, { $0.isTemporal }, "a date or timestamp")
            return .int
        }
    }

    private func expectBool(_ node: Node, _ context: String) throws(ExpressionError) {
        let t = try type(of: node)
        guard t == .bool || t == .null || t == .unknown else {
            throw ExpressionError("\(context) needs a true/false condition, but \(describe(node)) is \(t)", at: node.position)
        }
    }

    /// Whether two sides may be compared: both numbers, both text, both bools, or dates and
    /// timestamps (with each other, or with a '…' literal in ISO 8601).
    private func comparable(_ a: Node, _ ta: ExprType, _ b: Node, _ tb: ExprType, at: Int) throws(ExpressionError) {
        if ta == .unknown || tb == .unknown || ta == .null || tb == .null || ta == tb { return }
        if ta.isNumber, tb.isNumber { return }
        if ta.isTemporal, tb.isTemporal { return }
        for (temporal, other, otherType) in [(ta, b, tb), (tb, a, ta)] where temporal.isTemporal && otherType == .string {
            guard case .literal(.string(let s)) = other.kind else { continue }
            guard Value.parse(s, as: .timestamp) != nil else {
                throw ExpressionError("'\(s)' is not a date or timestamp (ISO 8601: 2024-01-31 or 2024-01-31T12:00:00Z)", at: other.position)
            }
            return
        }
        throw ExpressionError("cannot compare \(describe(a)) (\(ta)) with \(describe(b)) (\(tb)); cast one side: cast(x AS \(ta.dataType ?? .string))", at: at)
    }

    private func common(_ a: ExprType, _ b: ExprType, at: Int) throws(ExpressionError) -> ExprType {
        if a == b || b == .null { return a }
        if a == .null { return b }
        if a == .unknown || b == .unknown { return .unknown }
        if a.isNumber, b.isNumber { return .double }
        if a.isTemporal, b.isTemporal { return .timestamp }
        throw ExpressionError("the results mix \(a) and \(b); cast them to one type", at: at)
    }

    private func describe(_ node: Node) -> String {
        switch node.kind {
        case .column(let name): "column \(name)"
        case .literal(let v): v.isNull ? "NULL" : "'\(v.text)'"
        case .call(let name, _): "\(name)(…)"
        default: "the value at character \(node.position)"
        }
    }
}
