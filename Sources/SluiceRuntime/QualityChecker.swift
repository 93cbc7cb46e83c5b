import Foundation
import SluiceConfig
import SluiceCore

/// What one rule found in a run: stored in the run history and printed in summaries.
public struct RuleResult: Sendable, Codable {
    public var rule: String
    public var field: String?
    public var severity: String
    public var evaluated = 0
    public var failed = 0
    /// Up to 100 failing records (JSON), or the run-level finding.
    public var samples: [String] = []
}

/// Checks a pipeline's quality rules while it ingests. Record-level rules run on every batch in
/// the writing stage: a record failing an `error` rule is rejected (quarantined with the rule,
/// field, value and message), `warn` only counts. Run-level rules (completeness, freshness,
/// row_count) are decided before the run's last unit commits; an `error` failure fails that unit
/// and the pipeline. Counts of a unit only count once it commits (a retried unit is not counted twice).
final class QualityChecker {
    let rules: [QualityRule]
    private(set) var results: [RuleResult]
    private var pending: [RuleResult]
    /// `unique`: the keys committed so far, and those of the open unit.
    private var keys: [Int: Set<String>] = [:]
    private var pendingKeys: [Int: Set<String>] = [:]
    /// Run-level accumulators: non-null counts, newest timestamps, rows.
    private var nonNull: [Int: Int] = [:], pendingNonNull: [Int: Int] = [:]
    private var newest: [Int: Int64] = [:], pendingNewest: [Int: Int64] = [:]
    private var rows = 0, pendingRows = 0

    init(rules: [QualityRule]) {
        self.rules = rules
        results = rules.map { RuleResult(rule: $0.name, field: $0.field, severity: $0.severity.rawValue) }
        pending = results
    }

    var isEmpty: Bool { rules.isEmpty }

    /// Passed checks / evaluated checks over the committed units (nil without rules).
    var score: Double? {
        let evaluated = results.reduce(0) { $0 + $1.evaluated }
        guard !rules.isEmpty else { return nil }
        guard evaluated > 0 else { return 1 }
        return Double(evaluated - results.reduce(0) { $0 + $1.failed }) / Double(evaluated)
    }

    /// Record-level rules on one batch: the rows that stay, and the rejected ones.
    func check(_ batch: RecordBatch, context: RunContext) throws -> (RecordBatch, [Rejection]) {
        pendingRows += batch.rowCount
        var rejectedBy = [Int?](repeating: nil, count: batch.rowCount)   // row → the rule that rejected it
        var messages: [Int: String] = [:]
        for (index, rule) in rules.enumerated() {
            guard let fails = try failures(of: rule, index, batch, context) else { continue }
            pending[index].evaluated += batch.rowCount
            for (row, message) in fails {
                pending[index].failed += 1
                if pending[index].samples.count < 100 { pending[index].samples.append(batch.row(row).jsonText) }
                if rule.severity == .error, rejectedBy[row] == nil {
                    rejectedBy[row] = index
                    messages[row] = message
                }
            }
        }
        var keep: [Int] = []
        var rejected: [Rejection] = []
        for row in 0..<batch.rowCount {
            guard let index = rejectedBy[row] else { keep.append(row); continue }
            let rule = rules[index]
            rejected.append(Rejection(reason: .quality, rule: rule.name, field: rule.field, message: messages[row] ?? "failed",
                                      origin: batch.origins[row], record: batch.row(row).fields))
        }
        return (rejected.isEmpty ? batch : batch.taking(keep), rejected)
    }

    /// The failing rows of a record-level rule with their messages; nil for run-level rules
    /// (whose accumulators this updates).
    private func failures(of rule: QualityRule, _ index: Int, _ batch: RecordBatch, _ context: RunContext) throws -> [(Int, String)]? {
        let n = batch.rowCount
        func column(_ name: String) -> Column? { batch[name] }
        switch rule.check {
        case .notNull(let f):
            guard let c = column(f) else { return (0..<n).map { ($0, "\(f) is missing") } }
            return c.nullCount == 0 ? [] : (0..<n).filter { c.isNull($0) }.map { ($0, "\(f) is null") }
        case .unique(let fields):
            var out: [(Int, String)] = []
            let columns = fields.map(column)
            for row in 0..<n {
                let key = columns.map { $0.map { $0.value(at: row).text } ?? "" }.joined(separator: "\u{1F}")
                if keys[index]?.contains(key) == true || !pendingKeys[index, default: []].insert(key).inserted {
                    out.append((row, "duplicate \(fields.joined(separator: ", ")) \(columns.map { $0.map { $0.value(at: row).text } ?? "" }.joined(separator: ", "))"))
                }
            }
            return out
        case .range(let f, let low, let high):
            guard let c = column(f) else { return [] }
            var out: [(Int, String)] = []
            for row in 0..<n where !c.isNull(row) {
                let v = c.value(at: row)
                if let low, Self.less(v, low) { out.append((row, "\(f) \(v.text) is below \(low.text)")) }
                else if let high, Self.less(high, v) { out.append((row, "\(f) \(v.text) is above \(high.text)")) }
            }
            return out
        case .pattern(let f, let regex):
            guard let c = column(f) else { return [] }
            return (0..<n).filter { !c.isNull($0) && !Expression.matches(c.value(at: $0).text, pattern: regex) }
                .map { ($0, "\(f) '\(c.value(at: $0).text)' does not match \(regex)") }
        case .acceptedValues(let f, let values):
            guard let c = column(f) else { return [] }
            let allowed = Set(values.map(\.text))
            return (0..<n).filter { !c.isNull($0) && !allowed.contains(c.value(at: $0).text) }
                .map { ($0, "\(f) '\(c.value(at: $0).text)' is not one of \(values.map(\.text).joined(separator: ", "))") }
        case .expression(let e):
            let result: Column
            do {
                result = try e.evaluate(batch, now: context.startedAt)
            } catch {
                throw SluiceError(.schema, "quality rule \(rule.name) '\(e.text)' \(error)", component: "quality",
                                  fix: "declare the columns' types under schema.columns, or cast them in the expression")
            }
            return (0..<n).filter { !result.isNull($0) && !result.bools[$0] }.map { ($0, "\(e.text) is false") }
        case .completeness(let f, _):
            pendingNonNull[index, default: 0] += column(f).map { $0.count - $0.nullCount } ?? 0
            return nil
        case .freshness(let f, _):
            guard let c = column(f) else { return nil }
            for row in 0..<n where !c.isNull(row) {
                guard case .timestamp(let t)? = c.value(at: row).converted(to: .timestamp) else { continue }
                pendingNewest[index] = max(pendingNewest[index] ?? .min, t)
            }
            return nil
        case .rowCount:
            return nil
        }
    }

    /// Numbers compare as numbers, dates and timestamps as instants, anything else as text.
    static func less(_ a: Value, _ b: Value) -> Bool {
        func number(_ v: Value) -> Double? {
            switch v {
            case .int64(let i): Double(i)
            case .double(let d): d
            case .decimal(let u, let s): DecimalText.toDouble(u, scale: s)
            case .string(let s): Double(s)
            default: nil
            }
        }
        if let x = number(a), let y = number(b) { return x < y }
        if case .timestamp(let x)? = a.converted(to: .timestamp), case .timestamp(let y)? = b.converted(to: .timestamp) { return x < y }
        return a.text < b.text
    }

    /// The run-level rules over the run including the open unit: the `error` failures (each a
    /// message). `history`: records written by the last successful runs, newest first.
    func runLevelFailures(history: [Int], now: Int64) -> [String] {
        var errors: [String] = []
        let total = rows + pendingRows
        for (index, rule) in rules.enumerated() where rule.isRunLevel {
            var finding: String?
            switch rule.check {
            case .completeness(let f, let minRatio):
                let present = nonNull[index, default: 0] + pendingNonNull[index, default: 0]
                let ratio = total == 0 ? 1 : Double(present) / Double(total)
                if ratio < minRatio { finding = String(format: "%@ is present in %.1f%% of %d records, below %.1f%%", f, 100 * ratio, total, 100 * minRatio) }
            case .freshness(let f, let maxAge):
                let latest = [newest[index], pendingNewest[index]].compactMap { $0 }.max()
                if let latest {
                    let age = Double(now - latest) / 1_000_000
                    if age > maxAge { finding = String(format: "the newest %@ is %@, %.0f s old, more than %.0f s", f, Temporal.formatTimestamp(latest), age, maxAge) }
                } else if total > 0 {
                    finding = "no record has a \(f) timestamp"
                }
            case .rowCount(let low, let high, let maxChange, let window):
                if let low, total < low { finding = "\(total) records, fewer than \(low)" }
                else if let high, total > high { finding = "\(total) records, more than \(high)" }
                else if let maxChange, !history.isEmpty {
                    let recent = history.prefix(window)
                    let average = Double(recent.reduce(0, +)) / Double(recent.count)
                    if average > 0, abs(Double(total) - average) / average > maxChange {
                        finding = String(format: "%d records against an average of %.0f over the last %d runs (a change of %.0f%%, more than %.0f%%)",
                                         total, average, recent.count, 100 * abs(Double(total) - average) / average, 100 * maxChange)
                    }
                }
            default:
                continue
            }
            pending[index].evaluated = 1
            pending[index].failed = finding == nil ? 0 : 1
            pending[index].samples = finding.map { [$0] } ?? []
            if let finding, rule.severity == .error { errors.append("\(rule.name): \(finding)") }
        }
        return errors
    }

    /// The open unit committed: its counts and keys now count.
    func unitCommitted() {
        for i in rules.indices {
            if rules[i].isRunLevel {
                if pending[i].evaluated > 0 { results[i] = pending[i] }
            } else {
                results[i].evaluated += pending[i].evaluated
                results[i].failed += pending[i].failed
                results[i].samples = Array((results[i].samples + pending[i].samples).prefix(100))
            }
            keys[i, default: []].formUnion(pendingKeys[i] ?? [])
            nonNull[i, default: 0] += pendingNonNull[i] ?? 0
            if let t = pendingNewest[i] { newest[i] = max(newest[i] ?? .min, t) }
        }
        rows += pendingRows
        resetPending()
    }

    /// The open unit was rolled back: forget what it contributed (but keep it for the report of
    /// a run that ends there).
    func unitRolledBack() {
        if pending.contains(where: { $0.evaluated > 0 }) { rolledBack = pending }
        resetPending()
    }
    private var rolledBack: [RuleResult]?

    /// What the run's report shows: the committed units, plus the unit rolled back last when the
    /// run failed (its records were checked even though none landed).
    func report(failed: Bool) -> (results: [RuleResult], score: Double?) {
        guard failed, let extra = rolledBack else { return (results, score) }
        var merged = results
        for i in merged.indices {
            if rules[i].isRunLevel {
                if extra[i].evaluated > 0 { merged[i] = extra[i] }
            } else {
                merged[i].evaluated += extra[i].evaluated
                merged[i].failed += extra[i].failed
                merged[i].samples = Array((merged[i].samples + extra[i].samples).prefix(100))
            }
        }
        let evaluated = merged.reduce(0) { $0 + $1.evaluated }
        return (merged, evaluated == 0 ? score : Double(evaluated - merged.reduce(0) { $0 + $1.failed }) / Double(evaluated))
    }

    private func resetPending() {
        pending = rules.map { RuleResult(rule: $0.name, field: $0.field, severity: $0.severity.rawValue) }
        pendingKeys = [:]
        pendingNonNull = [:]
        pendingNewest = [:]
        pendingRows = 0
    }
}
