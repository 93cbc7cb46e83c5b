/// A slice of records in columnar form: one `Column` per schema field, all of equal length.
public struct RecordBatch: Sendable {
    public private(set) var schema: Schema
    public private(set) var columns: [Column]
    public private(set) var rowCount: Int
    /// Where each row came from in its source unit (line number for CSV/JSONL, record index for
    /// JSON), kept through row selections so quarantine can point at the input.
    public private(set) var origins: [Int]

    public init(schema: Schema, columns: [Column], origins: [Int]? = nil) {
        precondition(schema.count == columns.count, "one column per field")
        let n = columns.first?.count ?? (origins?.count ?? 0)
        precondition(columns.allSatisfy { $0.count == n }, "columns of equal length")
        self.schema = schema
        self.columns = columns
        self.rowCount = n
        self.origins = origins ?? Array(1..<(n + 1))
    }

    public static func empty(_ schema: Schema) -> RecordBatch {
        RecordBatch(schema: schema, columns: schema.fields.map { Column(type: $0.type) }, origins: [])
    }

    public subscript(name: String) -> Column? { schema.index(of: name).map { columns[$0] } }

    public var byteSize: Int { columns.reduce(0) { $0 + $1.byteSize } }

    /// The row view of row `index`.
    public func row(_ index: Int) -> Row { Row(batch: self, index: index) }
    public var rows: [Row] { (0..<rowCount).map(row) }

    /// A batch with only the given rows, in order.
    public func taking(_ rows: [Int]) -> RecordBatch {
        if rows.count == rowCount, rows.elementsEqual(0..<rowCount) { return self }
        return RecordBatch(schema: schema, columns: columns.map { $0.taking(rows) }, origins: rows.map { origins[$0] })
    }

    /// Adds `n` to every origin: rows parsed from a block in the middle of a file were numbered
    /// from the block's start.
    public mutating func shiftOrigins(by n: Int) {
        guard n != 0 else { return }
        for i in origins.indices { origins[i] += n }
    }

    /// A batch with only the named columns, in the given order (missing names are skipped).
    public func selecting(_ names: [String]) -> RecordBatch {
        let idx = names.compactMap(schema.index(of:))
        return RecordBatch(schema: Schema(idx.map { schema[$0] }), columns: idx.map { columns[$0] }, origins: origins)
    }

    /// Replaces or appends a column.
    public mutating func setColumn(_ field: Field, _ column: Column) {
        precondition(column.count == rowCount || schema.count == 0)
        if schema.count == 0 { rowCount = column.count; if origins.count != rowCount { origins = Array(1..<(rowCount + 1)) } }
        if let i = schema.index(of: field.name) {
            schema.append(field)
            columns[i] = column
        } else {
            schema.append(field)
            columns.append(column)
        }
    }

    public mutating func removeColumn(_ name: String) {
        guard let i = schema.index(of: name) else { return }
        var fields = schema.fields
        fields.remove(at: i)
        columns.remove(at: i)
        schema = Schema(fields)
    }

    /// Renames a column; the field keeps its type and flags.
    public mutating func renameColumn(_ name: String, to newName: String) {
        guard let i = schema.index(of: name) else { return }
        var fields = schema.fields
        fields[i].name = newName
        schema = Schema(fields)
    }
}

/// A row of a `RecordBatch`, read on demand from its columns.
public struct Row: Sendable {
    public let batch: RecordBatch
    public let index: Int

    public subscript(name: String) -> Value { batch.schema.index(of: name).map { batch.columns[$0].value(at: index) } ?? .null }
    public subscript(column: Int) -> Value { batch.columns[column].value(at: index) }
    public var origin: Int { batch.origins[index] }

    /// `[(name, value)]` in schema order.
    public var fields: [(String, Value)] { batch.schema.fields.enumerated().map { ($1.name, batch.columns[$0].value(at: index)) } }

    /// The row as one JSON object, keys in schema order.
    public var jsonText: String {
        "{" + fields.map { JSONText.quoted($0.0) + ":" + $0.1.jsonText }.joined(separator: ",") + "}"
    }
}
