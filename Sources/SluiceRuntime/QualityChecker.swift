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
/// the reading stage, after the transforms (so they use the core the SQL inserts do not): a record
/// failing an `error` rule is rejected (quarantined with the rule, field, value and message), `warn`
/// only counts. Run-level rules (completeness, freshness, row_count) are decided before the run's
/// last unit commits; an `error` failure fails that unit and the pipeline.
///
/// What a unit contributes (counts, `unique` keys, run-level figures) is kept apart per unit until
/// the writing stage commits it, and dropped when the unit is rolled back or read again, so a
/// retried unit counts once. Readers of concurrent units take turns (one lock).
final class QualityChecker: @unchecked Sendable {
    let rules: [QualityRule]
    private(set) var results: [RuleResult]
    /// The committed units' `unique` keys and run-level accumulators.
    private var keys: [Int: Set<String>] = [:]
    private var intKeys: [Int: Int64Set] = [:]
    private var nonNull: [Int: Int] = [:]
    private var newest: [Int: Int64] = [:]
    private var rows = 0

    /// One open unit's contribution.
    struct Pending {
        var results: [RuleResult]
        var keys: [Int: Set<String>] = [:]
        var intKeys: [Int: Int64Set] = [:]
        var nonNull: [Int: Int] = [:]
        var newest: [Int: Int64] = [:]
        var rows = 0
    }
    private var open: [String: Pending] = [:]
    private let lock = NSLock()

    init(rules: [QualityRule]) {
        self.rules = rules
        results = rules.map { RuleResult(rule: $0.name, field: $0.field, severity: $0.severity.rawValue) }
    }

    /// Keys already in the sink count as seen by a `unique` rule with `scope: sink`: each row as
    /// the rule's fields' values.
    func seed(rule index: Int, keys rows: [[Value]]) {
        lock.lock()
        defer { lock.unlock() }
        func isInteger(_ row: [Value]) -> Bool { if row.count == 1, case .int64 = row[0] { true } else { false } }
        if rows.allSatisfy(isInteger) {
            var set = Int64Set(capacity: rows.count)
            for r in rows { if case .int64(let v) = r[0] { set.insert(v) } }
            intKeys[index] = set
        }
        // Text keys too: a batch may type the key column otherwise than the table does.
        keys[index] = Set(rows.map { $0.map(\.text).joined(separator: "\u{1F}") })
    }

    private func fresh() -> Pending { Pending(results: rules.map { RuleResult(rule: $0.name, field: $0.field, severity: $0.severity.rawValue) }) }

    var isEmpty: Bool { rules.isEmpty }

    /// Passed checks / evaluated checks over the committed units (nil without rules).
    var score: Double? { rules.isEmpty ? nil : Self.score(results) }

    /// Record-level rules on one batch of `unit`: the rows that stay, and the rejected ones.
    func check(_ batch: RecordBatch, unit: String, context: RunContext) throws -> (RecordBatch, [Rejection]) {
        lock.lock()
        defer { lock.unlock() }
        var pending = open.removeValue(forKey: unit) ?? fresh()
        defer { open[unit] = pending }
        pending.rows += batch.rowCount
        var rejectedBy = [Int32](repeating: -1, count: batch.rowCount)   // row → the rule that rejected it
        var messages: [Int: String] = [:]
        for (index, rule) in rules.enumerated() {
            guard let found = try failures(of: rule, index, batch, context, &pending) else { continue }
            pending.results[index].evaluated += batch.rowCount
            pending.results[index].failed += found.rows.count
            for row in found.rows.prefix(max(0, 100 - pending.results[index].samples.count)) { pending.results[index].samples.append(batch.row(row).jsonText) }
            guard rule.severity == .error else { continue }
            for row in found.rows where rejectedBy[row] < 0 {
                rejectedBy[row] = Int32(index)
                messages[row] = found.message(row)
            }
        }
        guard messages.count > 0 else { return (batch, []) }
        var keep: [Int] = []
        var rejected: [Rejection] = []
        keep.reserveCapacity(batch.rowCount - messages.count)
        for row in 0..<batch.rowCount {
            guard rejectedBy[row] >= 0 else { keep.append(row); continue }
            let rule = rules[Int(rejectedBy[row])]
            rejected.append(Rejection(reason: .quality, rule: rule.name, field: rule.field, message: messages[row] ?? "failed",
                                      origin: batch.origins[row], record: batch.row(row).fields))
        }
        return (batch.taking(keep), rejected)
    }

    /// The rows that fail a record-level rule and how to say why (asked only for rejected rows);
    /// nil for run-level rules, whose accumulators this updates.
    private func failures(of rule: QualityRule, _ index: Int, _ batch: RecordBatch, _ context: RunContext, _ pending: inout Pending) throws
        -> (rows: [Int], message: (Int) -> String)? {
        let n = batch.rowCount
        switch rule.check {
        case .notNull(let f):
            guard let c = batch[f] else { return (Array(0..<n), { _ in "\(f) is missing" }) }
            return (c.nullCount == 0 ? [] : (0..<n).filter { c.isNull($0) }, { _ in "\(f) is null" })
        case .unique(let fields, _):
            let columns = fields.map { batch[$0] }
            func text(_ row: Int) -> String { columns.map { $0.map { $0.value(at: row).text } ?? "" }.joined(separator: ", ") }
            var rows: [Int] = []
            if columns.count == 1, let c = columns[0], c.type == .int64 {
                // The common case, a numeric id, without building text keys.
                let committed = intKeys[index] ?? Int64Set()
                var seen = pending.intKeys.removeValue(forKey: index) ?? Int64Set(capacity: n)
                let checkCommitted = committed.count > 0
                for row in 0..<n where !c.isNull(row) {
                    let key = c.int64s[row]
                    if checkCommitted && committed.contains(key) || !seen.insert(key) { rows.append(row) }
                }
                pending.intKeys[index] = seen
            } else {
                let committed = keys[index] ?? []
                var seen = pending.keys.removeValue(forKey: index) ?? []
                for row in 0..<n {
                    let key = columns.map { $0.map { $0.value(at: row).text } ?? "" }.joined(separator: "\u{1F}")
                    if committed.contains(key) || !seen.insert(key).inserted { rows.append(row) }
                }
                pending.keys[index] = seen
            }
            return (rows, { "duplicate \(fields.joined(separator: ", ")) \(text($0))" })
        case .range(let f, let low, let high):
            guard let c = batch[f] else { return ([], { _ in "" }) }
            let message: (Int) -> String = { row in
                let v = c.value(at: row)
                return low.map { v.sorts(before: $0) } == true ? "\(f) \(v.text) is below \(low!.text)" : "\(f) \(v.text) is above \(high?.text ?? "")"
            }
            if let bounds = Self.numericBounds(low, high), let values = Self.numbers(c) {
                return ((0..<n).filter { !c.isNull($0) && (values[$0] < bounds.0 || values[$0] > bounds.1) }, message)
            }
            return ((0..<n).filter { row in
                guard !c.isNull(row) else { return false }
                let v = c.value(at: row)
                return low.map { v.sorts(before: $0) } == true || high.map { $0.sorts(before: v) } == true
            }, message)
        case .pattern(let f, let regex):
            guard let c = batch[f] else { return ([], { _ in "" }) }
            guard let compiled = Expression.Pattern(regex) else { return ([], { _ in "" }) }
            let binary = c.type.physical == .binary && c.type != .bytes
            return ((0..<n).filter { row in
                !c.isNull(row) && !(binary ? c.withBytes(at: row) { compiled.matches($0) } : compiled.matches(c.value(at: row).text))
            },
                    { "\(f) '\(c.value(at: $0).text)' does not match \(regex)" })
        case .acceptedValues(let f, let values):
            guard let c = batch[f] else { return ([], { _ in "" }) }
            let message: (Int) -> String = { "\(f) '\(c.value(at: $0).text)' is not one of \(values.map(\.text).joined(separator: ", "))" }
            if c.type == .string {
                // Text compared as bytes, without making a String per row.
                let allowed = values.map { Array($0.text.utf8) }
                return ((0..<n).filter { row in
                    !c.isNull(row) && !c.withBytes(at: row) { bytes in allowed.contains { $0.elementsEqual(bytes) } }
                }, message)
            }
            let allowed = Set(values.map(\.text))
            return ((0..<n).filter { !c.isNull($0) && !allowed.contains(c.value(at: $0).text) }, message)
        case .expression(let e):
            let result: Column
            do {
                result = try e.evaluate(batch, now: context.startedAt)
            } catch {
                throw SluiceError(.schema, "quality rule \(rule.name) '\(e.text)' \(error)", component: "quality",
                                  fix: "declare the columns' types under schema.columns, or cast them in the expression")
            }
            return ((0..<n).filter { !result.isNull($0) && !result.bools[$0] }, { _ in "\(e.text) is false" })
        case .completeness(let f, _):
            pending.nonNull[index, default: 0] += batch[f].map { $0.count - $0.nullCount } ?? 0
            return nil
        case .freshness(let f, _):
            guard let c = batch[f] else { return nil }
            if c.type == .timestamp {
                var latest = pending.newest[index] ?? .min
                for row in 0..<n where !c.isNull(row) { latest = max(latest, c.int64s[row]) }
                pending.newest[index] = latest
                return nil
            }
            for row in 0..<n where !c.isNull(row) {
                guard case .timestamp(let t)? = c.value(at: row).converted(to: .timestamp) else { continue }
                pending.newest[index] = max(pending.newest[index] ?? .min, t)
            }
            return nil
        case .rowCount:
            return nil
        }
    }

    /// A numeric column's values as doubles (nil for other types).
    private static func numbers(_ c: Column) -> [Double]? {
        switch c.type {
        case .int64: c.int64s.map(Double.init)
        case .double: c.doubles
        case .decimal(_, let scale): c.decimals.map { DecimalText.toDouble($0, scale: scale) }
        default: nil
        }
    }

    private static func numericBounds(_ low: Value?, _ high: Value?) -> (Double, Double)? {
        func number(_ v: Value?) -> Double?? {
            guard let v else { return .some(nil) }
            switch v {
            case .int64(let i): return Double(i)
            case .double(let d): return d
            default: return nil
            }
        }
        guard let l = number(low), let h = number(high) else { return nil }
        return (l ?? -.infinity, h ?? .infinity)
    }

    /// The run-level rules over the committed units and `unit`: the `error` failures (each a
    /// message). `history`: records written by the last successful runs, newest first.
    func runLevelFailures(unit: String, history: [Int], now: Int64) -> [String] {
        lock.lock()
        defer { lock.unlock() }
        var pending = open.removeValue(forKey: unit) ?? fresh()
        defer { open[unit] = pending }
        var errors: [String] = []
        let total = rows + pending.rows
        for (index, rule) in rules.enumerated() where rule.isRunLevel {
            var finding: String?
            switch rule.check {
            case .completeness(let f, let minRatio):
                let present = nonNull[index, default: 0] + pending.nonNull[index, default: 0]
                let ratio = total == 0 ? 1 : Double(present) / Double(total)
                if ratio < minRatio { finding = String(format: "%@ is present in %.1f%% of %d records, below %.1f%%", f, 100 * ratio, total, 100 * minRatio) }
            case .freshness(let f, let maxAge):
                let latest = [newest[index], pending.newest[index]].compactMap { $0 }.max()
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
            pending.results[index].evaluated = 1
            pending.results[index].failed = finding == nil ? 0 : 1
            pending.results[index].samples = finding.map { [$0] } ?? []
            if let finding, rule.severity == .error { errors.append("\(rule.name): \(finding)") }
        }
        return errors
    }

    /// `unit` committed: its counts and keys now count.
    func unitCommitted(_ unit: String) {
        lock.lock()
        defer { lock.unlock() }
        guard let pending = open.removeValue(forKey: unit) else { return }
        results = adding(pending.results, to: results)
        for i in rules.indices {
            keys[i, default: []].formUnion(pending.keys[i] ?? [])
            if let added = pending.intKeys[i] {
                if intKeys[i] == nil { intKeys[i] = added } else { intKeys[i]!.formUnion(added) }
            }
            nonNull[i, default: 0] += pending.nonNull[i] ?? 0
            if let t = pending.newest[i] { newest[i] = max(newest[i] ?? .min, t) }
        }
        rows += pending.rows
    }

    /// `unit` was rolled back, or is read again: forget what it contributed (but keep it for the
    /// report of a run that ends there).
    func unitRolledBack(_ unit: String) {
        lock.lock()
        defer { lock.unlock() }
        guard let pending = open.removeValue(forKey: unit) else { return }
        if pending.results.contains(where: { $0.evaluated > 0 }) { rolledBack = pending.results }
    }
    private var rolledBack: [RuleResult]?

    /// What the run's report shows: the committed units, plus the unit rolled back last when the
    /// run failed (its records were checked even though none landed).
    func report(failed: Bool) -> (results: [RuleResult], score: Double?) {
        guard failed, let extra = rolledBack else { return (results, score) }
        let merged = adding(extra, to: results)
        return (merged, Self.score(merged))
    }

    /// A unit's results added to the run's: counts summed, samples capped at 100; a run-level
    /// rule's latest decision replaces the earlier one.
    private func adding(_ unit: [RuleResult], to run: [RuleResult]) -> [RuleResult] {
        var out = run
        for i in out.indices {
            if rules[i].isRunLevel {
                if unit[i].evaluated > 0 { out[i] = unit[i] }
            } else {
                out[i].evaluated += unit[i].evaluated
                out[i].failed += unit[i].failed
                out[i].samples = Array((out[i].samples + unit[i].samples).prefix(100))
            }
        }
        return out
    }

    /// Passed checks / evaluated checks; 1 when nothing was evaluated.
    private static func score(_ results: [RuleResult]) -> Double {
        let evaluated = results.reduce(0) { $0 + $1.evaluated }
        guard evaluated > 0 else { return 1 }
        return Double(evaluated - results.reduce(0) { $0 + $1.failed }) / Double(evaluated)
    }
}
