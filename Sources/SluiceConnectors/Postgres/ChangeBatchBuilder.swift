import Foundation
import PostgresNIO
import SluiceCore
import SluiceFormats

/// A table whose changes are captured: its catalog description and how its values are typed.
struct CapturedTable: Sendable {
    var schema: String
    var name: String
    var columns: [PostgresTypes.Column]
    var primaryKey: [String]
    /// `schema.table`, as wal2json's `add-tables` and the state keys spell it.
    var qualified: String { schema + "." + name }
    var declared: Schema {
        Schema(columns.map { c in Field(c.name, PostgresTypes.sluiceType(c), nullable: c.nullable && !primaryKey.contains(c.name), primaryKey: primaryKey.contains(c.name)) })
    }
}

/// Where a change sits in the source's history, for the change envelope's `source` block.
struct ChangeOrigin {
    var xid: Int64
    /// The change's own WAL position (nil for snapshot reads).
    var lsn: LSN?
    /// The end of its transaction's commit record: the position saved once it is applied.
    var commit: LSN?
    /// Commit time, ms since the epoch.
    var commitMillis: Int64
    var snapshot: Bool
}

/// Collects the changes of one table into batches, in arrival order, in one of two shapes:
/// - rows (a sink in `mode: replicate` applies them): the table's typed columns plus
///   `ChangeRecords.operationColumn`; a delete carries the old row (at least its key), a truncate a
///   row of nulls, and an update that changes the key becomes a delete of the old key and an update;
/// - envelopes (a change log): Debezium-style `op`, `before`, `after`, `source`, `ts_ms`.
struct ChangeBatchBuilder {
    let table: CapturedTable
    let emitsRows: Bool
    let pipeline: String
    let database: String
    private let typer: BatchTyper
    private let position: [String: Int]
    private var ops: [String] = []
    private var before: [RawColumn]
    private var after: [RawColumn]
    private var hasBefore: [Bool] = []
    private var hasAfter: [Bool] = []
    private var origins: [ChangeOrigin] = []
    private var bytes = 0

    init(table: CapturedTable, emitsRows: Bool, pipeline: String, database: String) {
        self.table = table
        self.emitsRows = emitsRows
        self.pipeline = pipeline
        self.database = database
        // Nullable throughout: an absent image (the old row of an insert) and a truncate's row are
        // rows of nulls, whatever the table's constraints.
        typer = BatchTyper(declared: Schema(table.declared.fields.map { Field($0.name, $0.type, nullable: true, primaryKey: $0.primaryKey) }))
        position = Dictionary(table.columns.enumerated().map { ($1.name, $0) }, uniquingKeysWith: { a, _ in a })
        before = table.columns.map { _ in RawColumn() }
        after = before
    }

    var count: Int { ops.count }
    var byteCount: Int { bytes }

    /// Adds one decoded change (insert, update, delete or truncate).
    mutating func add(_ change: Wal2JSONChange, origin: ChangeOrigin) {
        switch change.action {
        case .insert:
            append("c", before: nil, after: change.columns, origin: origin)
        case .update:
            // Unchanged TOASTed values are left out of the new row; the old row (REPLICA IDENTITY
            // FULL) has them.
            var image = change.columns
            let present = Set(image.map(\.name))
            for old in change.identity where !present.contains(old.name) { image.append(old) }
            let oldKey = key(of: change.identity), newKey = key(of: image)
            if emitsRows, !change.identity.isEmpty, oldKey != newKey {
                append("d", before: change.identity, after: nil, origin: origin)
                append("u", before: nil, after: image, origin: origin)
            } else {
                append("u", before: change.identity.isEmpty ? nil : change.identity, after: image, origin: origin)
            }
        case .delete:
            append("d", before: change.identity, after: nil, origin: origin)
        case .truncate:
            append("t", before: nil, after: nil, origin: origin)
        default:
            break
        }
    }

    /// A row of the snapshot (op `r`), from a SELECT of `PostgresTypes.selectExpression` of every
    /// column, as the batch source reads them.
    mutating func addSnapshotRow(_ row: PostgresRow, origin: ChangeOrigin) {
        ops.append("r")
        hasBefore.append(false)
        hasAfter.append(true)
        origins.append(origin)
        for k in before.indices { before[k].appendNull() }
        for (k, cell) in row.enumerated() where k < after.count {
            guard let value = cell.bytes else { after[k].appendNull(); continue }
            let kind: RawKind = PostgresTypes.sluiceType(table.columns[k]) == .json ? .nested : .text
            bytes += value.readableBytes
            value.withUnsafeReadableBytes { after[k].append(kind, $0) }
        }
    }

    /// A truncate marker: in rows mode, the start of a snapshot that replaces the replica's rows.
    mutating func addTruncate(origin: ChangeOrigin) {
        append("t", before: nil, after: nil, origin: origin)
    }

    private func key(of image: [Wal2JSONChange.Column]) -> [Wal2JSONValue] {
        table.primaryKey.map { k in image.first { $0.name == k }?.value ?? .null }
    }

    private mutating func append(_ op: String, before old: [Wal2JSONChange.Column]?, after new: [Wal2JSONChange.Column]?, origin: ChangeOrigin) {
        ops.append(op)
        origins.append(origin)
        hasBefore.append(old != nil)
        hasAfter.append(new != nil)
        bytes += Self.fill(&before, from: old, table: table, position: position)
        bytes += Self.fill(&after, from: new, table: table, position: position)
    }

    /// Appends one image (or nulls) to the raw columns; returns about how many bytes it held.
    private static func fill(_ columns: inout [RawColumn], from image: [Wal2JSONChange.Column]?, table: CapturedTable, position: [String: Int]) -> Int {
        let start = columns.first?.count ?? 0
        var bytes = 0
        for column in image ?? [] {
            guard let k = position[column.name], columns[k].count == start else { continue }
            switch column.value {
            case .null: columns[k].appendNull()
            case .bool(let b): TextParsing.withBytes(b ? "true" : "false") { columns[k].append(.bool, $0) }
            case .number(let digits): TextParsing.withBytes(digits) { columns[k].append(.number, $0) }
            case .text(let text):
                appendText(text, to: &columns[k], type: table.columns[k])
                bytes += text.utf8.count
            }
            bytes += 8
        }
        // Columns the change does not carry (not in the key of an old row) stay null.
        for k in columns.indices where columns[k].count == start { columns[k].appendNull() }
        return bytes
    }

    /// A value wal2json printed as text, in the form the batch source reads it: bytea as raw bytes,
    /// arrays and json as JSON text, everything else as PostgreSQL's text.
    private static func appendText(_ text: String, to column: inout RawColumn, type: PostgresTypes.Column) {
        if type.baseType == "bytea", let raw = Self.unhex(text) {
            raw.withUnsafeBytes { column.append(.text, $0) }
        } else if type.category == "A" {
            let element = type.sqlType.replacingOccurrences(of: "[]", with: "")
            let numeric = ["smallint", "integer", "bigint", "real", "double precision", "oid"].contains(element) || element.hasPrefix("numeric")
            let json = PostgresArrayText.json(text, numeric: numeric, boolean: element == "boolean") ?? JSONText.quoted(text)
            TextParsing.withBytes(json) { column.append(.nested, $0) }
        } else if type.category == "C" {
            // A composite arrives as its text form `(1,"x y")`: kept as a JSON string.
            TextParsing.withBytes(JSONText.quoted(text)) { column.append(.nested, $0) }
        } else if PostgresTypes.sluiceType(type) == .json {
            TextParsing.withBytes(text) { column.append(.nested, $0) }
        } else {
            TextParsing.withBytes(text) { column.append(.text, $0) }
        }
    }

    private static func unhex(_ text: String) -> [UInt8]? {
        var out: [UInt8] = []
        out.reserveCapacity(text.utf8.count / 2)
        var high: UInt8?
        for c in text.utf8 {
            let v: UInt8
            switch c {
            case 48...57: v = c - 48
            case 97...102: v = c - 87
            case 65...70: v = c - 55
            default: return nil
            }
            if let h = high { out.append(h << 4 | v); high = nil } else { high = v }
        }
        return high == nil ? out : nil
    }

    /// The changes so far as one batch (rows or envelopes). A change with a value that does not
    /// convert (an `infinity` timestamp, say) is rejected whole, with the table and its position.
    mutating func take(nowMillis: Int64) -> SourceBatch {
        defer { reset() }
        let n = ops.count
        let names = table.columns.map(\.name)
        let numbering = Array(1...max(n, 1)).prefix(n).map { $0 }
        let (afterTyped, afterRejected) = typer.type(RawBatch(names: names, columns: after, origins: numbering))
        let (beforeTyped, beforeRejected) = typer.type(RawBatch(names: names, columns: before, origins: numbering))
        var rejections: [Rejection] = []
        var bad = Set<Int>()
        for r in afterRejected + beforeRejected {
            guard let i = r.origin.map({ $0 - 1 }), bad.insert(i).inserted else { continue }
            var described = r
            described.message = "\(table.qualified): change \(ops[i]) at \(origins[i].lsn?.description ?? "snapshot"): " + r.message
            described.origin = nil
            rejections.append(described)
        }
        let kept = (0..<n).filter { !bad.contains($0) }
        // The typed batches lack their rejected rows: line the kept changes up with their rows.
        let afterBatch = afterTyped.taking(kept.map { Self.row(of: $0, skipping: afterRejected) })
        let beforeBatch = beforeTyped.taking(kept.map { Self.row(of: $0, skipping: beforeRejected) })
        let batch = emitsRows
            ? rows(kept: kept, after: afterBatch, before: beforeBatch)
            : envelopes(kept: kept, after: afterBatch, before: beforeBatch, nowMillis: nowMillis)
        return SourceBatch(batch: batch, rejected: rejections, bytesRead: bytes)
    }

    /// The position of change `i` in a typed batch from which the `rejected` changes were dropped.
    private static func row(of i: Int, skipping rejected: [Rejection]) -> Int {
        i - rejected.filter { ($0.origin ?? 0) - 1 < i }.count
    }

    /// The table's columns, each row from the new image (or the old one for deletes), and the operation.
    private func rows(kept: [Int], after: RecordBatch, before: RecordBatch) -> RecordBatch {
        var fields = after.schema.fields
        var columns = fields.map { Column(type: $0.type, capacity: kept.count) }
        for (j, i) in kept.enumerated() {
            let image = hasAfter[i] ? after : before
            for c in columns.indices { columns[c].append(from: image.columns[c], row: j) }
        }
        var op = Column(type: .string, capacity: kept.count)
        for i in kept { op.append(string: ops[i]) }
        fields.append(Field(ChangeRecords.operationColumn, .string, nullable: false))
        columns.append(op)
        return RecordBatch(schema: Schema(fields), columns: columns, origins: kept.map { $0 + 1 })
    }

    /// Debezium-style envelopes: `op`, `before` and `after` as JSON objects (null when absent),
    /// `source` {connector, name, db, schema, table, txId, lsn, commit_lsn, ts_ms, snapshot}, `ts_ms`.
    private func envelopes(kept: [Int], after: RecordBatch, before: RecordBatch, nowMillis: Int64) -> RecordBatch {
        var op = Column(type: .string), beforeJSON = Column(type: .json), afterJSON = Column(type: .json)
        var source = Column(type: .json), ts = Column(type: .int64)
        var scratch: [UInt8] = []
        let keys: [[UInt8]] = after.schema.fields.map { f in
            var k: [UInt8] = []
            TextParsing.withBytes(f.name) { JSONText.appendQuoted($0, to: &k) }
            k.append(58)
            return k
        }
        func image(_ batch: RecordBatch, _ row: Int, into column: inout Column) {
            scratch.removeAll(keepingCapacity: true)
            scratch.append(123)
            for c in batch.columns.indices {
                if c > 0 { scratch.append(44) }
                scratch.append(contentsOf: keys[c])
                ValueWriter.appendJSON(batch.columns[c], row, to: &scratch)
            }
            scratch.append(125)
            scratch.withUnsafeBytes { column.append(bytes: $0) }
        }
        let prefix = "{\"connector\":\"postgresql\",\"name\":" + JSONText.quoted(pipeline) + ",\"db\":" + JSONText.quoted(database)
            + ",\"schema\":" + JSONText.quoted(table.schema) + ",\"table\":" + JSONText.quoted(table.name)
        for (j, i) in kept.enumerated() {
            op.append(string: ops[i])
            if hasBefore[i] { image(before, j, into: &beforeJSON) } else { beforeJSON.appendNull() }
            if hasAfter[i] { image(after, j, into: &afterJSON) } else { afterJSON.appendNull() }
            let o = origins[i]
            var text = prefix + ",\"txId\":\(o.xid)"
            text += ",\"lsn\":" + (o.lsn.map { "\($0.value)" } ?? "null")
            text += ",\"commit_lsn\":" + (o.commit.map { "\($0.value)" } ?? "null")
            text += ",\"ts_ms\":\(o.commitMillis),\"snapshot\":\(o.snapshot)}"
            source.append(string: text)
            ts.append(int64: nowMillis)
        }
        return RecordBatch(schema: Self.envelopeSchema, columns: [op, beforeJSON, afterJSON, source, ts], origins: kept.map { $0 + 1 })
    }

    static let envelopeSchema = Schema([Field("op", .string, nullable: false), Field("before", .json), Field("after", .json),
                                        Field("source", .json, nullable: false), Field("ts_ms", .int64, nullable: false)])

    private mutating func reset() {
        ops = []
        hasBefore = []
        hasAfter = []
        origins = []
        bytes = 0
        before = table.columns.map { _ in RawColumn() }
        after = before
    }
}
