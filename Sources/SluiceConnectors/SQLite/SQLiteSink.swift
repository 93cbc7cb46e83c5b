import Foundation
import SluiceConfig
import SluiceCore
import SluiceFormats

/// Writes batches into a SQLite table: `append`, `merge` (upsert by primary key) or `replace`
/// (rows go to a staging table that is swapped in atomically at the end of the run).
///
/// Each unit is one transaction, and the unit's state entries are written to `_sluice_state` in
/// that same transaction, so rows and positions can never disagree after a crash.
public final class SQLiteSink: Sink, @unchecked Sendable {
    public let config: SQLiteSinkConfig
    private var db: SQLiteDatabase?
    private var tableColumns: [String: String] = [:]   // name → declared SQL type
    private var tableOrder: [String] = []
    private var insert: SQLiteStatement?
    private var insertSchema: Schema?
    private var deferredState: [StateEntry] = []
    private var pipeline = ""
    private var staged = false

    public init(config: SQLiteSinkConfig) { self.config = config }

    public var storesStateTransactionally: Bool { true }

    /// The table rows are written to during this run.
    var targetTable: String { config.mode == .replace ? "_sluice_stage_" + config.table : config.table }

    private func database() throws -> SQLiteDatabase {
        guard let db else { throw SluiceError(.internal, "sink used before open()") }
        return db
    }

    public func open(context: RunContext) async throws {
        pipeline = context.pipeline
        let path = context.resolve(config.path)
        try FileSystem.createDirectory(forFile: path)
        let db = try SQLiteDatabase(path: path)
        self.db = db
        try db.execute("PRAGMA cache_size = -65536; PRAGMA temp_store = MEMORY")
        // Schema changes write too: they wait for another pipeline's open unit like rows do.
        try await holdingWriteLock(db) {
            try db.execute("""
                CREATE TABLE IF NOT EXISTS _sluice_state (pipeline TEXT NOT NULL, key TEXT NOT NULL, value TEXT NOT NULL,
                    updated_at TEXT NOT NULL, PRIMARY KEY (pipeline, key))
                """)
            if config.mode == .replace {
                try db.execute("DROP TABLE IF EXISTS \(q(targetTable))")
                staged = true
            }
            try loadTableColumns()
        }
    }

    /// Runs `body` as the only writer to this database file within the process.
    private func holdingWriteLock(_ db: SQLiteDatabase, _ body: () throws -> Void) async throws {
        await SQLiteWriteLock.shared.acquire(db.path)
        do {
            try body()
        } catch {
            await SQLiteWriteLock.shared.release(db.path)
            throw error
        }
        await SQLiteWriteLock.shared.release(db.path)
    }

    private func q(_ name: String) -> String { SQLiteDatabase.quoteIdentifier(name) }

    private func loadTableColumns() throws {
        let cols = try database().columns(of: targetTable)
        tableOrder = cols.map(\.name)
        tableColumns = Dictionary(cols.map { ($0.name, $0.type) }, uniquingKeysWith: { a, _ in a })
    }

    public func destinationColumns() async throws -> [String] { config.mode == .replace ? [] : tableOrder }

    public func loadState(context: RunContext) async throws -> [String: String] {
        let rows = try database().query("SELECT key, value FROM _sluice_state WHERE pipeline = ?", [.string(context.pipeline)])
        return Dictionary(rows.map { ($0[0].text, $0[1].text) }, uniquingKeysWith: { a, _ in a })
    }

    public func clearState(context: RunContext, keys: [String]?) async throws {
        let db = try database()
        if let keys {
            try db.transaction {
                for k in keys { try db.run("DELETE FROM _sluice_state WHERE pipeline = ? AND key = ?", [.string(context.pipeline), .string(k)]) }
            }
        } else {
            try db.run("DELETE FROM _sluice_state WHERE pipeline = ?", [.string(context.pipeline)])
        }
    }

    static func sqlType(_ t: DataType) -> String {
        switch t {
        case .bool: "BOOLEAN"
        case .int64: "INTEGER"
        case .double: "REAL"
        case .decimal(let p, let s): "DECIMAL(\(p),\(s))"
        case .string, .json: "TEXT"
        case .bytes: "BLOB"
        case .date: "DATE"
        case .timestamp: "TIMESTAMP"
        }
    }

    /// The DDL that makes the table take `schema`: the table when there is none, then the
    /// columns it lacks (SQLite's column types are affinities: values of a wider type fit).
    private func tableStatements(for schema: Schema, existing: [String]? = nil, table: String? = nil) throws -> [String] {
        let columns = existing ?? tableOrder
        let name = q(table ?? targetTable)
        if columns.isEmpty {
            if !config.create, !staged {
                throw SluiceError(.sink, "table \(config.table) does not exist and create is false", location: config.path,
                                  fix: "create the table, or set create: true")
            }
            var defs = schema.fields.map { "\(q($0.name)) \(Self.sqlType($0.type))\($0.nullable ? "" : " NOT NULL")" }
            let pk = schema.primaryKey
            if !pk.isEmpty { defs.append("PRIMARY KEY (\(pk.map(q).joined(separator: ", ")))") }
            return ["CREATE TABLE IF NOT EXISTS \(name) (\(defs.joined(separator: ", ")))"]
        }
        return try schema.fields.filter { !columns.contains($0.name) }.map { field in
            guard config.create else {
                throw SluiceError(.sink, "column \(field.name) is not in table \(config.table) and create is false",
                                  location: config.path, fix: "add the column, or set create: true")
            }
            return "ALTER TABLE \(name) ADD COLUMN \(q(field.name)) \(Self.sqlType(field.type))"
        }
    }

    public func plannedStatements(for schema: Schema, context: RunContext) async throws -> [String] {
        let path = context.resolve(config.path)
        var existing: [String] = []
        if FileManager.default.fileExists(atPath: path) { existing = try SQLiteDatabase(path: path).columns(of: config.table).map(\.name) }
        return try tableStatements(for: Schema(schema.fields.filter { $0.name != ChangeRecords.operationColumn }), existing: existing, table: config.table)
    }

    public func prepare(schema: Schema, context: RunContext) async throws {
        let db = try database()
        // The operation column of change records is applied, not stored.
        let schema = Schema(schema.fields.filter { $0.name != ChangeRecords.operationColumn })
        for statement in try tableStatements(for: schema) { try db.execute(statement) }
        let tableKey = Set(try db.columns(of: targetTable).filter(\.pk).map(\.name))
        if config.mode == .merge || config.mode == .replicate, !schema.primaryKey.isEmpty, tableKey != Set(schema.primaryKey) {
            // Upserts need a unique index on the key; a table created elsewhere may lack one.
            let name = "_sluice_pk_" + config.table
            do {
                try db.execute("CREATE UNIQUE INDEX IF NOT EXISTS \(q(name)) ON \(q(targetTable)) (\(schema.primaryKey.map(q).joined(separator: ", ")))")
            } catch let e as SluiceError {
                throw SluiceError(.sink, "cannot make \(schema.primaryKey.joined(separator: ", ")) unique in \(config.table): \(e.message)",
                                  location: db.path, fix: "remove duplicate keys from the table, or use mode: append")
            }
        }
        try loadTableColumns()
        insert = nil
    }

    private var lockPath: String?

    public func begin(_ unit: WorkUnit) async throws {
        let db = try database()
        await SQLiteWriteLock.shared.acquire(db.path)
        lockPath = db.path
        do {
            try db.execute("BEGIN IMMEDIATE")
        } catch {
            await releaseLock()
            throw error
        }
    }

    private func releaseLock() async {
        if let path = lockPath {
            lockPath = nil
            await SQLiteWriteLock.shared.release(path)
        }
    }

    private func statement(for schema: Schema) throws -> SQLiteStatement {
        if let insert, insertSchema == schema { return insert }
        let cols = schema.fields.map { q($0.name) }
        var sql = "INSERT INTO \(q(targetTable)) (\(cols.joined(separator: ", "))) VALUES (\(Array(repeating: "?", count: cols.count).joined(separator: ", ")))"
        let pk = schema.primaryKey
        if config.mode == .merge || config.mode == .replicate, !pk.isEmpty {
            let updates = schema.fields.filter { !$0.primaryKey }.map { "\(q($0.name)) = excluded.\(q($0.name))" }
            sql += " ON CONFLICT (\(pk.map(q).joined(separator: ", "))) DO " + (updates.isEmpty ? "NOTHING" : "UPDATE SET " + updates.joined(separator: ", "))
        }
        let s = try database().prepare(sql)
        insert = s
        insertSchema = schema
        return s
    }

    public func write(_ batch: RecordBatch) async throws -> [Rejection] {
        guard batch.rowCount > 0 else { return [] }
        if config.mode == .replicate { return try apply(batch) }
        let stmt = try statement(for: batch.schema)
        var rejected: [Rejection] = []
        // Columns SQLite stores as text are rendered once per batch into one buffer; every column is
        // then bound straight from its buffer through raw pointers taken once per batch. This loop
        // is the hot path of every SQLite load (see bench/).
        let columns = batch.columns.map(Self.bindable)
        try withExtendedLifetime(columns) {
            let binders = columns.map(ColumnBinder.init)
            for row in 0..<batch.rowCount {
                for c in 0..<binders.count { binders[c].bind(row, to: stmt, at: Int32(c + 1)) }
                do {
                    try stmt.step()
                } catch let e as SluiceError where e.isConstraintViolation {
                    // One row breaking a constraint (a duplicate key in append mode, a NULL key) is
                    // that row's problem: it goes to quarantine and the unit carries on.
                    rejected.append(Rejection(reason: .sink, message: e.message, origin: batch.origins[row],
                                              record: batch.row(row).fields))
                }
                stmt.reset()
            }
        }
        return rejected
    }

    /// replicate: change records applied in order, each as an upsert, a delete by key or (a
    /// truncate) a delete of every row.
    private func apply(_ batch: RecordBatch) throws -> [Rejection] {
        guard let ops = batch[ChangeRecords.operationColumn] else {
            throw SluiceError(.sink, "mode: replicate takes change records, and these rows have no \(ChangeRecords.operationColumn) column",
                              fix: "use a change data capture source (type: postgres, mode: cdc)")
        }
        var rows = batch
        rows.removeColumn(ChangeRecords.operationColumn)
        let key = rows.schema.primaryKey
        guard !key.isEmpty else {
            throw SluiceError(.sink, "mode: replicate needs the table's primary key, and the change records have none", location: config.table,
                              fix: "give the source table a primary key")
        }
        let upsert = try statement(for: rows.schema)
        let db = try database()
        let delete = try db.prepare("DELETE FROM \(q(targetTable)) WHERE " + key.map { "\(q($0)) = ?" }.joined(separator: " AND "))
        let keyColumns = key.map { rows.schema.index(of: $0)! }
        var rejected: [Rejection] = []
        let columns = rows.columns.map(Self.bindable)
        try withExtendedLifetime(columns) {
            let binders = columns.map(ColumnBinder.init)
            for row in 0..<rows.rowCount {
                switch ops.withBytes(at: row, { $0.first }) {
                case UInt8(ascii: "t"):
                    try db.execute("DELETE FROM \(q(targetTable))")
                case UInt8(ascii: "d"):
                    for (k, c) in keyColumns.enumerated() { binders[c].bind(row, to: delete, at: Int32(k + 1)) }
                    try delete.stepToEnd()
                    delete.reset()
                default:
                    for c in 0..<binders.count { binders[c].bind(row, to: upsert, at: Int32(c + 1)) }
                    do {
                        try upsert.step()
                    } catch let e as SluiceError where e.isConstraintViolation {
                        rejected.append(Rejection(reason: .sink, message: e.message, origin: rows.origins[row], record: rows.row(row).fields))
                    }
                    upsert.reset()
                }
            }
        }
        return rejected
    }

    /// Dates, timestamps and wide decimals as text columns (ISO-8601 / exact digits); decimals of up
    /// to 15 digits as doubles, which is what SQLite's DECIMAL affinity stores for them anyway.
    static func bindable(_ col: Column) -> Column {
        switch col.type {
        case .date, .timestamp, .decimal(16..., _):
            var out = Column(type: .string, capacity: col.count)
            var scratch: [UInt8] = []
            for row in 0..<col.count {
                if col.isNull(row) { out.appendNull(); continue }
                scratch.removeAll(keepingCapacity: true)
                switch col.type {
                case .date: ValueWriter.appendDate(col.int32s[row], to: &scratch)
                case .timestamp: ValueWriter.appendTimestamp(col.int64s[row], to: &scratch)
                default: scratch.append(contentsOf: col.value(at: row).text.utf8)
                }
                scratch.withUnsafeBytes { out.append(bytes: $0) }
            }
            return out
        case .decimal(_, let scale):
            var out = Column(type: .double, capacity: col.count)
            var divisor = 1.0
            for _ in 0..<scale { divisor *= 10 }
            for row in 0..<col.count {
                guard !col.isNull(row) else { out.appendNull(); continue }
                // Through Int64 where it fits: the generic Int128 → Double conversion is slow.
                let v = col.decimals[row]
                out.append(double: (Int64(exactly: v).map(Double.init) ?? Double(v)) / divisor)
            }
            return out
        default:
            return col
        }
    }

    public func commit(_ unit: WorkUnit, state: [StateEntry]) async throws {
        let db = try database()
        if staged {
            deferredState += state
        } else {
            try saveState(state, db: db)
        }
        try db.execute("COMMIT")
        await releaseLock()
    }

    private func saveState(_ state: [StateEntry], db: SQLiteDatabase) throws {
        guard !state.isEmpty else { return }
        let s = try db.prepare("INSERT INTO _sluice_state (pipeline, key, value, updated_at) VALUES (?, ?, ?, ?) "
                               + "ON CONFLICT (pipeline, key) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at")
        let now = Value.timestamp(Temporal.nowMicros())
        for e in state {
            s.bind(.string(pipeline), at: 1)
            s.bind(.string(e.key), at: 2)
            s.bind(.string(e.value), at: 3)
            s.bind(now, at: 4)
            try s.stepToEnd()
            s.reset()
        }
    }

    public func rollback(_ unit: WorkUnit) async throws {
        try? database().execute("ROLLBACK")
        // DDL of the unit (a created table, added columns) was rolled back with it.
        insert = nil
        try? loadTableColumns()
        await releaseLock()
    }

    public func finish(context: RunContext) async throws {
        guard staged else { return }
        let db = try database()
        insert = nil
        try await holdingWriteLock(db) { try swapStagedTable(db) }
        staged = false
    }

    private func swapStagedTable(_ db: SQLiteDatabase) throws {
        try db.transaction {
            if tableOrder.isEmpty {
                // Nothing was read: the replaced table is empty but keeps its columns.
                if try db.tableExists(config.table) { try db.execute("DELETE FROM \(q(config.table))") }
            } else {
                try db.execute("DROP TABLE IF EXISTS \(q(config.table))")
                try db.execute("ALTER TABLE \(q(targetTable)) RENAME TO \(q(config.table))")
            }
            try saveState(deferredState, db: db)
        }
    }

    public func close() async {
        insert = nil
        await releaseLock()
        if staged { try? db?.execute("DROP TABLE IF EXISTS \(q(targetTable))") }
        db = nil
    }
}

/// Binds one column's values from raw pointers into its buffers. The pointers stay valid because
/// the caller keeps the columns alive (`withExtendedLifetime`) and nothing mutates them meanwhile.
private struct ColumnBinder {
    enum Kind { case int64, double, bool, text, blob }
    let kind: Kind
    let hasNulls: Bool
    let validity: UnsafePointer<UInt64>?
    let int64s: UnsafePointer<Int64>?
    let doubles: UnsafePointer<Double>?
    let bools: UnsafePointer<Bool>?
    let offsets: UnsafePointer<Int>?
    let bytes: UnsafeRawPointer?

    init(_ column: Column) {
        kind = switch column.type {
        case .int64: .int64
        case .double: .double
        case .bool: .bool
        case .bytes: .blob
        default: .text
        }
        hasNulls = column.nullCount > 0
        validity = column.validity.words.withUnsafeBufferPointer { $0.baseAddress }
        int64s = column.int64s.withUnsafeBufferPointer { $0.baseAddress }
        doubles = column.doubles.withUnsafeBufferPointer { $0.baseAddress }
        bools = column.bools.withUnsafeBufferPointer { $0.baseAddress }
        offsets = column.offsets.withUnsafeBufferPointer { $0.baseAddress }
        bytes = column.bytes.withUnsafeBytes { $0.baseAddress }
    }

    @inline(__always)
    func bind(_ row: Int, to stmt: SQLiteStatement, at i: Int32) {
        if hasNulls, validity![row >> 6] & (1 << UInt64(row & 63)) == 0 { stmt.bindNull(i); return }
        switch kind {
        case .int64: stmt.bind(int64: int64s![row], i)
        case .double: stmt.bind(double: doubles![row], i)
        case .bool: stmt.bind(int64: bools![row] ? 1 : 0, i)
        case .text, .blob:
            let start = offsets![row], end = offsets![row + 1]
            let value = UnsafeRawBufferPointer(start: bytes.map { $0 + start }, count: end - start)
            if kind == .text { stmt.bind(text: value, i) } else { stmt.bind(blob: value, i) }
        }
    }
}
