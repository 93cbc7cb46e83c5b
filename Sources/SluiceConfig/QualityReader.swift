import SluiceCore

/// `quality:`: a list of rules, each one key (`not_null`, `unique`, `range`, `pattern`,
/// `accepted_values`, `freshness`, `completeness`, `row_count`, `expression`).
enum QualityReader {
    static let names = ["not_null", "unique", "range", "pattern", "accepted_values", "freshness", "completeness", "row_count", "expression"]

    static func read(_ node: ConfigNode, declared: Schema) -> [QualityRule] {
        guard let items = node.list() else { return [] }
        var rules: [QualityRule] = []
        for item in items {
            guard let pairs = item.pairs() else { continue }
            guard pairs.count == 1, let (name, keyMark, body) = pairs.first else {
                item.problem("\(item.path): each rule is one key (\(names.joined(separator: ", ")))")
                continue
            }
            switch name {
            case "not_null":
                // A list of fields, or { fields: […], severity: … }.
                guard case .mapping = body.node else {
                    rules += (body.strings() ?? []).map { QualityRule(name: name, check: .notNull($0)) }
                    continue
                }
                guard let o = body.object(allowed: ["fields", "field", "severity"]) else { continue }
                let fields = o["fields"]?.strings() ?? o["field"]?.string().map { [$0] } ?? []
                if fields.isEmpty { body.problem("\(body.path): name the fields (fields: [a, b])") }
                rules += fields.map { QualityRule(name: name, check: .notNull($0), severity: severity(o)) }
            case "unique":
                if case .mapping = body.node, let o = body.object(allowed: ["fields", "field", "scope", "severity"]) {
                    let fields = o["fields"]?.strings() ?? o["field"]?.string().map { [$0] } ?? []
                    if fields.isEmpty { body.problem("\(body.path): name the key fields (fields: [a, b])") }
                    let scope = o["scope"]?.string() ?? "run"
                    if !["run", "sink"].contains(scope) { o["scope"]?.problem("\(body.path).scope: run (this run's records) or sink (also the keys already loaded)") }
                    rules.append(QualityRule(name: name, check: .unique(fields, againstSink: scope == "sink"), severity: severity(o)))
                } else if let fields = body.strings(), !fields.isEmpty {
                    rules.append(QualityRule(name: name, check: .unique(fields, againstSink: false)))
                }
            case "range":
                guard let o = body.object(allowed: ["field", "min", "max", "severity"]), let field = o.required("field")?.string() else { continue }
                let low = o["min"].flatMap(value), high = o["max"].flatMap(value)
                if low == nil, high == nil { body.problem("\(body.path): give min, max or both") }
                rules.append(QualityRule(name: name, check: .range(field, min: low, max: high), severity: severity(o)))
            case "pattern":
                guard let o = body.object(allowed: ["field", "regex", "severity"]), let field = o.required("field")?.string(),
                      let regex = o.required("regex")?.string() else { continue }
                if !Expression.isValidPattern(regex) { o["regex"]?.problem("\(body.path).regex: '\(regex)' is not a valid regular expression") }
                rules.append(QualityRule(name: name, check: .pattern(field, regex: regex), severity: severity(o)))
            case "accepted_values":
                guard let o = body.object(allowed: ["field", "values", "severity"]), let field = o.required("field")?.string(),
                      let list = o.required("values")?.list() else { continue }
                rules.append(QualityRule(name: name, check: .acceptedValues(field, list.compactMap(value)), severity: severity(o)))
            case "freshness":
                guard let o = body.object(allowed: ["field", "max_age", "severity"]), let field = o.required("field")?.string(),
                      let age = o.required("max_age")?.duration() else { continue }
                rules.append(QualityRule(name: name, check: .freshness(field, maxAge: age), severity: severity(o)))
            case "completeness":
                guard let o = body.object(allowed: ["field", "min_ratio", "severity"]), let field = o.required("field")?.string(),
                      let ratio = o.required("min_ratio")?.double() else { continue }
                if !(0...1).contains(ratio) { o["min_ratio"]?.problem("\(body.path).min_ratio: between 0 and 1") }
                rules.append(QualityRule(name: name, check: .completeness(field, minRatio: ratio), severity: severity(o)))
            case "row_count":
                guard let o = body.object(allowed: ["min", "max", "max_change", "window", "severity"]) else { continue }
                var change: Double?
                if let c = o["max_change"], let text = c.string() {
                    let number = text.hasSuffix("%") ? Double(text.dropLast()).map { $0 / 100 } : Double(text)
                    if let number, number >= 0 { change = number } else { c.problem("\(c.path): a share such as 50% or 0.5") }
                }
                let low = o["min"]?.int(min: 0), high = o["max"]?.int(min: 0)
                if low == nil, high == nil, change == nil { body.problem("\(body.path): give min, max or max_change") }
                rules.append(QualityRule(name: name, check: .rowCount(min: low, max: high, maxChange: change, window: o["window"]?.int(min: 1) ?? 7),
                                         severity: severity(o)))
            case "expression":
                guard let o = body.object(allowed: ["name", "check", "severity"]), let check = o.required("check"),
                      let text = check.string() else { continue }
                guard let expression = ExpressionReader.parse(text, check, declared: declared, expecting: .bool) else { continue }
                rules.append(QualityRule(name: o["name"]?.string() ?? "expression", check: .expression(expression), severity: severity(o)))
            default:
                item.context.problem("\(item.path): unknown rule '\(name)'" + Spelling.didYouMean(name, names), at: keyMark)
            }
        }
        return rules
    }

    private static func severity(_ o: ObjectReader) -> QualityRule.Severity {
        o["severity"]?.oneOf(QualityRule.Severity.self, QualityRule.Severity.allCases) ?? .error
    }

    /// A YAML scalar as a value: plain numbers and booleans as such, anything else as text.
    static func value(_ node: ConfigNode) -> Value? {
        guard let text = node.string() else { return nil }
        if case .scalar(let s) = node.node, s.style == .plain {
            if let i = Int64(text) { return .int64(i) }
            if let d = Double(text) { return .double(d) }
            if text == "true" || text == "false" { return .bool(text == "true") }
        }
        return .string(text)
    }
}

/// Expressions in the project file, parsed and type-checked against the declared columns.
enum ExpressionReader {
    static func parse(_ text: String, _ node: ConfigNode, declared: Schema, expecting: DataType? = nil) -> Expression? {
        do {
            let expression = try Expression(text)
            let type = try expression.check { declared[$0]?.type }
            if let expecting, let type, type != expecting {
                node.problem("\(node.path): '\(text)' gives \(type), but a true/false condition is needed here")
                return nil
            }
            return expression
        } catch {
            node.problem("\(node.path): '\(text)' \(error)")
            return nil
        }
    }
}
