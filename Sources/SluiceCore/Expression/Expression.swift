/// The small expression language of `filter`, `compute` and the `expression` quality rule: SQL-like
/// literals, column references, arithmetic, comparison, AND/OR/NOT, IS [NOT] NULL, [NOT] IN,
/// [NOT] LIKE, [NOT] BETWEEN, CASE WHEN, CAST(x AS type) and a few functions.
///
/// An expression is parsed once, type-checked against the columns it names (at `sluice validate`
/// for declared columns, again against each new batch schema at run time), and evaluated a column
/// at a time over a `RecordBatch`. NULL follows SQL: it propagates through operators, and AND/OR
/// use three-valued logic.
public struct Expression: Sendable, CustomStringConvertible {
    public let text: String
    let root: Node

    public init(_ text: String) throws(ExpressionError) {
        self.text = text
        var parser = ExpressionParser(try ExpressionLexer.tokens(text))
        root = try parser.parseAll()
    }

    public var description: String { text }

    /// The columns the expression reads, in order of first use.
    public var columns: [String] {
        var seen: [String] = []
        root.visit { if case .column(let name) = $0.kind, !seen.contains(name) { seen.append(name) } }
        return seen
    }

    /// The expression's result type given the columns' types (`nil`: not known yet, checked when
    /// the data arrives). Throws on a type error, naming the position.
    @discardableResult
    public func check(_ columnType: (String) -> DataType?) throws(ExpressionError) -> DataType? {
        try withoutActuallyEscaping(columnType) { lookup throws(ExpressionError) in
            try ExpressionChecker { lookup($0).map(ExprType.init) ?? .unknown }.type(of: root).dataType
        }
    }

    /// Evaluates the expression for every row of `batch`. `now` is `now()` (µs), one value per run.
    public func evaluate(_ batch: RecordBatch, now: Int64) throws(ExpressionError) -> Column {
        // A column the batch lacks is NULL in every row.
        let checker = ExpressionChecker { batch.schema[$0].map { ExprType($0.type) } ?? .null }
        _ = try checker.type(of: root)
        return try ExpressionEvaluator(batch: batch, now: now).evaluate(root)
    }

    /// Whether `regexp_matches` (and the `pattern` rule) accept `pattern`.
    public static func isValidPattern(_ pattern: String) -> Bool { RegexCache.isValid(pattern) }

    /// A compiled pattern, for matching many values.
    public struct Pattern: Sendable {
        private let regex: RegexCache
        public init?(_ pattern: String) {
            guard let r = RegexCache.compile(pattern) else { return nil }
            regex = r
        }
        public func matches(_ text: String) -> Bool { regex.matches(text) }
        /// UTF-8 bytes (a text column's value, read in place).
        public func matches(_ utf8: UnsafeRawBufferPointer) -> Bool { regex.matches(utf8) }
    }

    /// The functions `call` accepts, for messages and docs.
    public static let functions = ExpressionChecker.signatures.keys.sorted()
}

/// A parse or type error at a position (1-based character) of the expression.
public struct ExpressionError: Error, Sendable, CustomStringConvertible {
    public var message: String
    public var position: Int
    public init(_ message: String, at position: Int) {
        self.message = message
        self.position = position
    }
    public var description: String { "at character \(position): \(message)" }
}

/// A syntax-tree node with where it starts in the text.
struct Node: Sendable {
    indirect enum Kind: Sendable {
        case literal(Value)
        case column(String)
        case negate(Node)
        case not(Node)
        case binary(BinaryOperator, Node, Node)
        case isNull(Node, negated: Bool)
        case inList(Node, [Node], negated: Bool)
        case like(Node, pattern: Node, negated: Bool)
        case between(Node, Node, Node, negated: Bool)
        case caseWhen([(Node, Node)], otherwise: Node?)
        case call(String, [Node])
        case cast(Node, DataType)
    }

    var kind: Kind
    var position: Int

    func visit(_ body: (Node) -> Void) {
        body(self)
        switch kind {
        case .literal, .column: break
        case .negate(let a), .not(let a), .isNull(let a, _), .cast(let a, _): a.visit(body)
        case .binary(_, let a, let b), .like(let a, let b, _): a.visit(body); b.visit(body)
        case .inList(let a, let list, _): a.visit(body); list.forEach { $0.visit(body) }
        case .between(let a, let b, let c, _): a.visit(body); b.visit(body); c.visit(body)
        case .caseWhen(let branches, let otherwise):
            for (w, t) in branches { w.visit(body); t.visit(body) }
            otherwise?.visit(body)
        case .call(_, let args): args.forEach { $0.visit(body) }
        }
    }
}

enum BinaryOperator: String, Sendable {
    case add = "+", subtract = "-", multiply = "*", divide = "/", modulo = "%", concat = "||"
    case equal = "=", notEqual = "!=", less = "<", lessOrEqual = "<=", greater = ">", greaterOrEqual = ">="
    case and = "AND", or = "OR"

    var isComparison: Bool { [.equal, .notEqual, .less, .lessOrEqual, .greater, .greaterOrEqual].contains(self) }
    var isArithmetic: Bool { [.add, .subtract, .multiply, .divide, .modulo].contains(self) }
}

// MARK: Lexing

struct Token: Equatable {
    enum Kind: Equatable {
        case number(String)
        case string(String)
        case identifier(String)
        case quotedIdentifier(String)
        case symbol(String)
        case end
    }
    var kind: Kind
    var position: Int

    /// A bare word compared case-insensitively (keywords).
    func isKeyword(_ word: String) -> Bool {
        if case .identifier(let w) = kind { return w.uppercased() == word }
        return false
    }
}

enum ExpressionLexer {
    static func tokens(_ text: String) throws(ExpressionError) -> [Token] {
        let chars = Array(text)
        var out: [Token] = []
        var i = 0
        while i < chars.count {
            let c = chars[i]
            let start = i + 1
            if c.isWhitespace { i += 1; continue }
            if c.isNumber || (c == "." && i + 1 < chars.count && chars[i + 1].isNumber) {
                var j = i
                while j < chars.count, chars[j].isNumber || chars[j] == "." { j += 1 }
                if j < chars.count, chars[j] == "e" || chars[j] == "E" {
                    var k = j + 1
                    if k < chars.count, chars[k] == "+" || chars[k] == "-" { k += 1 }
                    if k < chars.count, chars[k].isNumber {
                        j = k
                        while j < chars.count, chars[j].isNumber { j += 1 }
                    }
                }
                out.append(Token(kind: .number(String(chars[i..<j])), position: start))
                i = j
                continue
            }
            if c == "'" || c == "\"" {
                var j = i + 1
                var value = ""
                while true {
                    guard j < chars.count else {
                        throw ExpressionError(c == "'" ? "unterminated string: add the closing '" : "unterminated quoted name: add the closing \"", at: start)
                    }
                    if chars[j] == c {
                        if j + 1 < chars.count, chars[j + 1] == c { value.append(c); j += 2; continue }   // '' inside '…'
                        break
                    }
                    value.append(chars[j])
                    j += 1
                }
                out.append(Token(kind: c == "'" ? .string(value) : .quotedIdentifier(value), position: start))
                i = j + 1
                continue
            }
            if c.isLetter || c == "_" {
                var j = i
                while j < chars.count, chars[j].isLetter || chars[j].isNumber || chars[j] == "_" { j += 1 }
                out.append(Token(kind: .identifier(String(chars[i..<j])), position: start))
                i = j
                continue
            }
            let two = i + 1 < chars.count ? String(chars[i...i + 1]) : ""
            if ["<=", ">=", "!=", "<>", "==", "||"].contains(two) {
                out.append(Token(kind: .symbol(two == "<>" ? "!=" : two == "==" ? "=" : two), position: start))
                i += 2
                continue
            }
            if "+-*/%=<>(),".contains(c) {
                out.append(Token(kind: .symbol(String(c)), position: start))
                i += 1
                continue
            }
            throw ExpressionError("unexpected character '\(c)'", at: start)
        }
        out.append(Token(kind: .end, position: chars.count + 1))
        return out
    }
}
