/// Recursive descent, lowest precedence first: OR, AND, NOT, predicates (comparison, IS, IN, LIKE,
/// BETWEEN), `+ - ||`, `* / %`, unary minus, primaries.
struct ExpressionParser {
    private let tokens: [Token]
    private var index = 0

    init(_ tokens: [Token]) { self.tokens = tokens }

    private var current: Token { tokens[index] }
    private mutating func advance() -> Token {
        defer { index = min(index + 1, tokens.count - 1) }
        return tokens[index]
    }
    private func isSymbol(_ s: String) -> Bool { current.kind == .symbol(s) }
    private mutating func accept(_ s: String) -> Bool {
        guard isSymbol(s) else { return false }
        index += 1
        return true
    }
    private mutating func acceptKeyword(_ word: String) -> Bool {
        guard current.isKeyword(word) else { return false }
        index += 1
        return true
    }
    private mutating func expect(_ s: String, _ what: String) throws(ExpressionError) {
        guard accept(s) else { throw ExpressionError("expected \(what), found \(describe(current))", at: current.position) }
    }
    private mutating func expectKeyword(_ word: String) throws(ExpressionError) {
        guard acceptKeyword(word) else { throw ExpressionError("expected \(word), found \(describe(current))", at: current.position) }
    }

    private func describe(_ t: Token) -> String {
        switch t.kind {
        case .number(let n): "\(n)"
        case .string(let s): "'\(s)'"
        case .identifier(let w): w
        case .quotedIdentifier(let w): "\"\(w)\""
        case .symbol(let s): "'\(s)'"
        case .end: "the end of the expression"
        }
    }

    mutating func parseAll() throws(ExpressionError) -> Node {
        guard current.kind != .end else { throw ExpressionError("the expression is empty", at: 1) }
        let node = try parseOr()
        guard current.kind == .end else { throw ExpressionError("unexpected \(describe(current)) (missing AND/OR or an operator?)", at: current.position) }
        return node
    }

    private mutating func parseOr() throws(ExpressionError) -> Node {
        var left = try parseAnd()
        while current.isKeyword("OR") {
            let at = advance().position
            left = Node(kind: .binary(.or, left, try parseAnd()), position: at)
        }
        return left
    }

    private mutating func parseAnd() throws(ExpressionError) -> Node {
        var left = try parseNot()
        while current.isKeyword("AND") {
            let at = advance().position
            left = Node(kind: .binary(.and, left, try parseNot()), position: at)
        }
        return left
    }

    private mutating func parseNot() throws(ExpressionError) -> Node {
        if current.isKeyword("NOT") {
            let at = advance().position
            return Node(kind: .not(try parseNot()), position: at)
        }
        return try parsePredicate()
    }

    private mutating func parsePredicate() throws(ExpressionError) -> Node {
        let left = try parseAdditive()
        let at = current.position
        if case .symbol(let s) = current.kind, let op = BinaryOperator(rawValue: s), op.isComparison {
            index += 1
            return Node(kind: .binary(op, left, try parseAdditive()), position: at)
        }
        if acceptKeyword("IS") {
            let negated = acceptKeyword("NOT")
            try expectKeyword("NULL")
            return Node(kind: .isNull(left, negated: negated), position: at)
        }
        let negated = acceptKeyword("NOT")
        if acceptKeyword("IN") {
            try expect("(", "( after IN")
            var list: [Node] = [try parseAdditive()]
            while accept(",") { list.append(try parseAdditive()) }
            try expect(")", ") to close the IN list")
            return Node(kind: .inList(left, list, negated: negated), position: at)
        }
        if acceptKeyword("LIKE") {
            return Node(kind: .like(left, pattern: try parseAdditive(), negated: negated), position: at)
        }
        if acceptKeyword("BETWEEN") {
            let low = try parseAdditive()
            try expectKeyword("AND")
            return Node(kind: .between(left, low, try parseAdditive(), negated: negated), position: at)
        }
        if negated { throw ExpressionError("expected IN, LIKE or BETWEEN after NOT", at: current.position) }
        return left
    }

    private mutating func parseAdditive() throws(ExpressionError) -> Node {
        var left = try parseMultiplicative()
        while case .symbol(let s) = current.kind, s == "+" || s == "-" || s == "||" {
            let at = advance().position
            left = Node(kind: .binary(BinaryOperator(rawValue: s)!, left, try parseMultiplicative()), position: at)
        }
        return left
    }

    private mutating func parseMultiplicative() throws(ExpressionError) -> Node {
        var left = try parseUnary()
        while case .symbol(let s) = current.kind, s == "*" || s == "/" || s == "%" {
            let at = advance().position
            left = Node(kind: .binary(BinaryOperator(rawValue: s)!, left, try parseUnary()), position: at)
        }
        return left
    }

    private mutating func parseUnary() throws(ExpressionError) -> Node {
        if isSymbol("-") {
            let at = advance().position
            let operand = try parseUnary()
            // A negative literal stays a literal (Int64.min included).
            if case .literal(let v) = operand.kind {
                switch v {
                case .int64(let i): return Node(kind: .literal(.int64(0 &- i)), position: at)
                case .double(let d): return Node(kind: .literal(.double(-d)), position: at)
                default: break
                }
            }
            return Node(kind: .negate(operand), position: at)
        }
        return try parsePrimary()
    }

    private mutating func parsePrimary() throws(ExpressionError) -> Node {
        let token = advance()
        let at = token.position
        switch token.kind {
        case .number(let text):
            if let i = Int64(text) { return Node(kind: .literal(.int64(i)), position: at) }
            // 9223372036854775808 only makes sense negated.
            if text == "9223372036854775808", case .symbol("-")? = index >= 2 ? tokens[index - 2].kind : nil {
                return Node(kind: .literal(.int64(Int64.min)), position: at)
            }
            guard let d = Double(text) else { throw ExpressionError("'\(text)' is not a number", at: at) }
            return Node(kind: .literal(.double(d)), position: at)
        case .string(let s):
            return Node(kind: .literal(.string(s)), position: at)
        case .quotedIdentifier(let name):
            return Node(kind: .column(name), position: at)
        case .symbol("("):
            let inner = try parseOr()
            try expect(")", "a closing )")
            return inner
        case .identifier(let word):
            switch word.uppercased() {
            case "TRUE": return Node(kind: .literal(.bool(true)), position: at)
            case "FALSE": return Node(kind: .literal(.bool(false)), position: at)
            case "NULL": return Node(kind: .literal(.null), position: at)
            case "CASE": return try parseCase(at: at)
            case "CAST":
                try expect("(", "( after CAST")
                let value = try parseOr()
                try expectKeyword("AS")
                let typeToken = advance()
                var name = ""
                if case .identifier(let w) = typeToken.kind { name = w }
                // decimal(p, s)
                if accept("(") {
                    var parts: [String] = []
                    while case .number(let n) = current.kind { parts.append(n); index += 1; _ = accept(",") }
                    try expect(")", ") after the decimal's precision and scale")
                    name += "(" + parts.joined(separator: ",") + ")"
                }
                guard let type = DataType(parsing: name) else {
                    throw ExpressionError("unknown type '\(name)' (types: \(DataType.documentedNames.joined(separator: ", ")))", at: typeToken.position)
                }
                try expect(")", ") to close CAST")
                return Node(kind: .cast(value, type), position: at)
            default:
                if accept("(") {
                    var args: [Node] = []
                    if !accept(")") {
                        args.append(try parseOr())
                        while accept(",") { args.append(try parseOr()) }
                        try expect(")", ") to close the arguments of \(word)")
                    }
                    return Node(kind: .call(word.lowercased(), args), position: at)
                }
                return Node(kind: .column(word), position: at)
            }
        case .end:
            throw ExpressionError("the expression ends too early", at: at)
        default:
            throw ExpressionError("unexpected \(describe(token))", at: at)
        }
    }

    private mutating func parseCase(at: Int) throws(ExpressionError) -> Node {
        var branches: [(Node, Node)] = []
        while acceptKeyword("WHEN") {
            let condition = try parseOr()
            try expectKeyword("THEN")
            branches.append((condition, try parseOr()))
        }
        guard !branches.isEmpty else { throw ExpressionError("CASE needs at least one WHEN … THEN …", at: current.position) }
        let otherwise = acceptKeyword("ELSE") ? try parseOr() : nil
        try expectKeyword("END")
        return Node(kind: .caseWhen(branches, otherwise: otherwise), position: at)
    }
}
