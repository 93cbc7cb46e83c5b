import Crypto
import Foundation
import SluiceConfig
import SluiceCore

/// Builds the transform chain of a pipeline. Stateful transforms are created fresh per run.
public enum Transforms {
    public static func make(_ configs: [TransformConfig]) -> [any Transform] {
        configs.map { config -> any Transform in
            switch config {
            case .select(let names): SelectTransform(names: names)
            case .rename(let pairs): RenameTransform(pairs: pairs)
            case .cast(let pairs): CastTransform(pairs: pairs)
            case .addFields(let fields): AddFieldsTransform(fields: fields)
            case .mask(let fields, let method, let key): MaskTransform(fields: fields, method: method, key: key)
            case .deduplicate(let key, let keep): DeduplicateTransform(key: key, keep: keep)
            case .filter(let e): FilterTransform(expression: e)
            case .compute(let columns): ComputeTransform(columns: columns)
            }
        }
    }
}

/// Keeps the named columns in the given order; a name the data never had becomes a null column.
struct SelectTransform: Transform {
    let names: [String]
    func apply(_ batch: RecordBatch, context: RunContext) throws -> (RecordBatch, [Rejection]) {
        var out = batch.selecting(names)
        for name in names where out.schema.index(of: name) == nil {
            var col = Column(type: .string, capacity: batch.rowCount)
            for _ in 0..<batch.rowCount { col.appendNull() }
            out.setColumn(Field(name, .string), col)
        }
        return (out.selecting(names), [])
    }
}

struct RenameTransform: Transform {
    let pairs: [(String, String)]
    func apply(_ batch: RecordBatch, context: RunContext) throws -> (RecordBatch, [Rejection]) {
        var out = batch
        for (from, to) in pairs { out.renameColumn(from, to: to) }
        return (out, [])
    }
}

/// Converts columns to other types; a value that does not convert rejects its record.
struct CastTransform: Transform {
    let pairs: [(String, DataType)]
    func apply(_ batch: RecordBatch, context: RunContext) throws -> (RecordBatch, [Rejection]) {
        var out = batch
        var bad: [Int: (String, String)] = [:]
        for (name, type) in pairs {
            guard let i = out.schema.index(of: name) else { continue }
            var failures: [Int] = []
            let column = out.columns[i].converted(to: type, failures: &failures)
            for row in failures where bad[row] == nil {
                bad[row] = (name, "cannot cast '\(out.columns[i].value(at: row).text.prefix(200))' to \(type)")
            }
            var field = out.schema[i]
            field.type = type
            out.setColumn(field, column)
        }
        guard !bad.isEmpty else { return (out, []) }
        let rejected = bad.keys.sorted().map { row in
            Rejection(reason: .schema, rule: "cast", field: bad[row]!.0, message: bad[row]!.1, origin: batch.origins[row],
                      record: batch.row(row).fields)
        }
        return (out.taking((0..<out.rowCount).filter { bad[$0] == nil }), rejected)
    }
}

struct AddFieldsTransform: Transform {
    let fields: [(String, FieldExpression)]
    func apply(_ batch: RecordBatch, context: RunContext) throws -> (RecordBatch, [Rejection]) {
        var out = batch
        for (name, expression) in fields {
            let value: Value
            let type: DataType
            switch expression {
            case .now: (value, type) = (.timestamp(context.startedAt), .timestamp)
            case .sourceFile: (value, type) = (context.unit.map { .string($0) } ?? .null, .string)
            case .runID: (value, type) = (.string(context.runID), .string)
            case .pipelineName: (value, type) = (.string(context.pipeline), .string)
            case .literal(let v):
                value = v
                type = switch v {
                case .int64: .int64
                case .double: .double
                case .bool: .bool
                default: .string
                }
            }
            var col = Column(type: type, capacity: batch.rowCount)
            for _ in 0..<batch.rowCount { col.append(value) }
            out.setColumn(Field(name, type), col)
        }
        return (out, [])
    }
}

/// Replaces values with a SHA-256 (hex), an HMAC-SHA256 with a secret key (hex), or `***`.
struct MaskTransform: Transform {
    let fields: [String]
    let method: MaskMethod
    let key: String?

    func apply(_ batch: RecordBatch, context: RunContext) throws -> (RecordBatch, [Rejection]) {
        var out = batch
        let symmetricKey = key.map { SymmetricKey(data: Data($0.utf8)) }
        for name in fields {
            guard let i = out.schema.index(of: name) else { continue }
            let source = out.columns[i]
            var col = Column(type: .string, capacity: source.count)
            for row in 0..<source.count {
                if source.isNull(row) { col.appendNull(); continue }
                let text = source.value(at: row).text
                switch method {
                case .redact: col.append(string: "***")
                case .sha256: col.append(string: SHA256.hash(data: Data(text.utf8)).hexString)
                case .hmac: col.append(string: HMAC<SHA256>.authenticationCode(for: Data(text.utf8), using: symmetricKey!).hexString)
                }
            }
            var field = out.schema[i]
            field.type = .string
            out.setColumn(field, col)
        }
        return (out, [])
    }

}

/// Drops records whose key was already seen in this run (`keep: first`), or keeps the last record
/// of each key within a batch (`keep: last`; across batches a later record replaces an earlier one
/// in a `merge` sink). Keys are remembered as 16-byte digests, so memory grows by about 40 bytes
/// per distinct key.
final class DeduplicateTransform: Transform, @unchecked Sendable {
    let key: [String]
    let keep: DedupKeep
    private var seen = Set<SIMD2<UInt64>>()

    init(key: [String], keep: DedupKeep) {
        self.key = key
        self.keep = keep
    }

    private func digest(_ batch: RecordBatch, _ row: Int, _ indices: [Int?]) -> SIMD2<UInt64> {
        var hasher = SHA256()
        for i in indices {
            let text = i.map { batch.columns[$0].value(at: row).jsonText } ?? "null"
            hasher.update(data: Data(text.utf8))
            hasher.update(data: Data([0]))
        }
        let d = Array(hasher.finalize())
        return d.withUnsafeBytes { SIMD2($0.loadUnaligned(fromByteOffset: 0, as: UInt64.self), $0.loadUnaligned(fromByteOffset: 8, as: UInt64.self)) }
    }

    func apply(_ batch: RecordBatch, context: RunContext) throws -> (RecordBatch, [Rejection]) {
        let indices = key.map { batch.schema.index(of: $0) }
        let keys = (0..<batch.rowCount).map { digest(batch, $0, indices) }
        var rows: [Int] = []
        switch keep {
        case .first:
            for row in 0..<batch.rowCount where seen.insert(keys[row]).inserted { rows.append(row) }
        case .last:
            var last: [SIMD2<UInt64>: Int] = [:]
            for row in 0..<batch.rowCount { last[keys[row]] = row }
            rows = (0..<batch.rowCount).filter { last[keys[$0]] == $0 }
        }
        return (batch.taking(rows), [])
    }
}

/// `filter`: keeps the rows where the expression is true (NULL counts as false, as in SQL WHERE).
struct FilterTransform: Transform {
    let expression: SluiceCore.Expression

    func apply(_ batch: RecordBatch, context: RunContext) throws -> (RecordBatch, [Rejection]) {
        let keep = try ExpressionFailure.evaluating(expression, in: "filter", batch, context)
        var rows: [Int] = []
        rows.reserveCapacity(batch.rowCount)
        for row in 0..<batch.rowCount where !keep.isNull(row) && keep.bools[row] { rows.append(row) }
        return (batch.taking(rows), [])
    }
}

/// `compute`: adds or replaces columns, each expression seeing the ones computed before it.
struct ComputeTransform: Transform {
    let columns: [(String, SluiceCore.Expression)]

    func apply(_ batch: RecordBatch, context: RunContext) throws -> (RecordBatch, [Rejection]) {
        var out = batch
        for (name, expression) in columns {
            let column = try ExpressionFailure.evaluating(expression, in: "compute \(name)", out, context)
            out.setColumn(Field(name, column.type), column)
        }
        return (out, [])
    }
}

/// An expression that cannot run on the data as it arrived (a column of another type than the
/// expression needs) fails the unit with the expression and the reason.
enum ExpressionFailure {
    static func evaluating(_ expression: SluiceCore.Expression, in what: String, _ batch: RecordBatch, _ context: RunContext) throws -> Column {
        do {
            return try expression.evaluate(batch, now: context.startedAt)
        } catch {
            throw SluiceError(.schema, "\(what) '\(expression.text)' \(error) (with the data's types: "
                              + expression.columns.map { "\($0) \(batch.schema[$0].map { "\($0.type)" } ?? "missing")" }.joined(separator: ", ") + ")",
                              component: "transform \(what.split(separator: " ")[0])",
                              fix: "declare the column's type under schema.columns, or cast it in the expression")
        }
    }
}
