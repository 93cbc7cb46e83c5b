import Foundation
import PostgresNIO
import SluiceConfig
import SluiceCore

/// Loads batches into a PostgreSQL table, exactly once.
///
/// Each unit is one transaction: its rows (one COPY FROM STDIN per unit, the fastest path
/// postgres-nio offers) and its positions in `_sluice_state` commit together, so a crash or an
/// outage before COMMIT leaves nothing behind and the unit is loaded again in full.
/// - `append` copies straight into the table when its names are plain; otherwise, and for
///   `merge`, rows are copied into a temporary staging table first.
/// - `merge` then applies the staged rows (`PostgresSink+Merge.swift`); the last row of a unit
///   wins for a key that occurs twice.
/// - `replace` loads a staging table during the run and swaps its contents into the table in one
///   transaction at the end.
/// Every value travels as COPY data or a bound parameter; identifiers are quoted.
public final class PostgresSink: Sink, @unchecked Sendable {
    let config: PostgresSinkConfig
    let schemaConfig: SchemaConfig
    let endpoint: PostgresEndpoint
    let schemaName: String
    let tableName: String
    var client: PostgresClient?
    /// Columns the table has (name → Sluice type), loaded from the catalog; nil until known.
    var tableColumns: [String: String]?
    var schema = Schema()
    var primaryKey: [String] = []
    /// The temporary table rows are copied into before merge / the staging table of replace.
    private var stageName: String?
    private var stageVersion = 0
    /// The staging table's column types, c0…cN.
    private var stageTypes: [String] = []
    /// Rows copied into the staging table in this unit: their arrival numbers (`sluice_seq`).
    var stagedRows = 0
    /// The COPY open in this unit and the columns it was started with.
    private var copy: PostgresCopyStream?
    private var copyColumns: [String] = []
    /// merge: whether two rows of this unit may share a key (decides how the unit is applied).
    var keys = UnitKeyTracker()
    /// replicate: the arrival number of the unit's last truncate (rows before it no longer count).
    var lastTruncate: Int?
    private var unitOpen = false
    private var pipeline = ""

    public var storesStateTransactionally: Bool { true }
    static let component = "sink postgres"

    public init(config: PostgresSinkConfig, schema: SchemaConfig) throws {
        self.config = config
        schemaConfig = schema
        endpoint = try PostgresEndpoint(url: config.url)
        (schemaName, tableName) = PostgresSQL.split(config.table)
    }

    var target: String { PostgresSQL.qualified(schemaName, tableName) }
    var stateTable: String { PostgresSQL.qualified(schemaName, "_sluice_state") }
    /// replace: the table built during the run.
    var replaceTable: String { PostgresSQL.qualified(schemaName, "_sluice_stage_" + tableName) }

    private func db() throws -> PostgresClient {
        guard let client else { throw SluiceError(.internal, "the PostgreSQL sink is not open", component: Self.component) }
        return client
    }

    public func open(context: RunContext) async throws {
        let client = try await PostgresClient.connect(endpoint, component: Self.component)
        pipeline = context.pipeline
        do {
            // Serialized by an advisory lock: pipelines opening at once would otherwise race on
            // CREATE … IF NOT EXISTS, which PostgreSQL does not make atomic.
            try await client.execute("BEGIN")
            try await client.execute("SELECT pg_advisory_xact_lock(\(Self.ddlLock))")
            try await client.execute("CREATE SCHEMA IF NOT EXISTS \(PostgresSQL.quote(schemaName))")
            try await client.execute("""
                CREATE TABLE IF NOT EXISTS \(stateTable) (pipeline text NOT NULL, key text NOT NULL, value text NOT NULL,
                    updated_at timestamptz NOT NULL DEFAULT now(), PRIMARY KEY (pipeline, key))
                """)
            if config.mode == .replace { try await client.execute("DROP TABLE IF EXISTS \(replaceTable)") }
            try await client.execute("COMMIT")
        } catch {
            await client.close()
            throw error
        }
        self.client = client
    }

    /// Advisory lock key for Sluice's DDL (an arbitrary constant: "sluice" in ASCII).
    static let ddlLock: Int64 = 0x736c_7569_6365

    public func loadState(context: RunContext) async throws -> [String: String] {
        let rows = try await db().rows("SELECT key, value FROM \(stateTable) WHERE pipeline = $1", [context.pipeline])
        var out: [String: String] = [:]
        for row in rows { if let k = row[0], let v = row[1] { out[k] = v } }
        return out
    }

    public func clearState(context: RunContext, keys: [String]?) async throws {
        guard let keys else {
            try await db().stream("DELETE FROM \(stateTable) WHERE pipeline = $1", [context.pipeline]) { _ in }
            return
        }
        for key in keys { try await db().stream("DELETE FROM \(stateTable) WHERE pipeline = $1 AND key = $2", [context.pipeline, key]) { _ in } }
    }

    // MARK: Table

    public func destinationColumns() async throws -> [String] {
        guard config.mode != .replace else { return [] }
        if tableColumns == nil { tableColumns = try await existingColumns(try db(), table: tableName) }
        return Array(tableColumns!.keys)
    }

    public func prepare(schema: Schema, context: RunContext) async throws {
        let db = try db()
        try await finishCopy()   // DDL cannot run while a COPY is open
        self.schema = schema
        // The operation column of change records is applied, not stored.
        let schema = Schema(schema.fields.filter { $0.name != ChangeRecords.operationColumn })
        if tableColumns == nil { tableColumns = try await existingColumns(db, table: tableName) }
        let statements = try tableStatements(for: schema, existing: tableColumns!)
        if tableColumns!.isEmpty { try await db.execute("SELECT pg_advisory_xact_lock(\(Self.ddlLock))") }
        for statement in statements { try await db.execute(statement) }
        if !statements.isEmpty { tableColumns = try await existingColumns(db, table: tableName) }
        primaryKey = schema.primaryKey
        if primaryKey.isEmpty { primaryKey = try await PostgresRelation.primaryKey(db, schema: schemaName, table: tableName) }
        if config.mode == .merge || config.mode == .replicate, primaryKey.isEmpty {
            throw SluiceError(.sink, "\(config.mode) into \(schemaName).\(tableName) needs a primary key, and neither the schema nor the table has one",
                              component: Self.component, fix: "mark the key columns with primary_key: true under schema.columns")
        }
        if config.mode == .replace {
            let columns = try await existingColumns(db, table: "_sluice_stage_" + tableName)
            if columns.isEmpty {
                try await db.execute("CREATE TABLE \(replaceTable) (LIKE \(target) INCLUDING DEFAULTS)")
            }
            for field in schema.fields where columns[field.name] == nil && !columns.isEmpty {
                try await db.execute("ALTER TABLE \(replaceTable) ADD COLUMN \(PostgresSQL.quote(field.name)) \(PostgresTypes.sqlType(field.type))")
            }
        }
        if let stageName {
            // Mid-unit growth: the staging table keeps its rows and gains the new columns.
            // Staged columns follow the incoming schema, the change records' operation included:
            // new ones are added, widened ones change type.
            for (k, field) in self.schema.fields.enumerated() {
                let type = PostgresTypes.sqlType(field.type)
                if k >= stageTypes.count {
                    try await db.execute("ALTER TABLE \(stageName) ADD COLUMN c\(k) \(type)")
                } else if stageTypes[k] != type {
                    try await db.execute("ALTER TABLE \(stageName) ALTER COLUMN c\(k) TYPE \(type) USING c\(k)::\(type)")
                }
            }
            stageTypes = self.schema.fields.map { PostgresTypes.sqlType($0.type) }
        }
    }

    /// The DDL that makes the table take `schema` (`prepare` runs it, `sluice run --plan` prints
    /// it): the table when there is none, then added columns and, for values that widened
    /// upstream (integers that became decimals or text), columns widened in place.
    func tableStatements(for schema: Schema, existing: [String: String]) throws -> [String] {
        guard !existing.isEmpty else {
            guard config.create else {
                throw SluiceError(.sink, "table \(schemaName).\(tableName) does not exist", component: Self.component, location: endpoint.display,
                                  fix: "create it, or set create: true on the sink")
            }
            return [createTable(target, schema: schema)]
        }
        var out: [String] = []
        for field in schema.fields {
            guard let current = existing[field.name] else {
                out.append("ALTER TABLE \(target) ADD COLUMN \(PostgresSQL.quote(field.name)) \(PostgresTypes.sqlType(field.type))")
                continue
            }
            let currentType = PostgresTypes.sluiceType(PostgresTypes.column(name: field.name, formatType: current))
            let widened = currentType.widened(with: field.type)
            if widened != currentType, config.create {
                let wider = PostgresTypes.sqlType(widened)
                out.append("ALTER TABLE \(target) ALTER COLUMN \(PostgresSQL.quote(field.name)) TYPE \(wider) USING \(PostgresSQL.quote(field.name))::\(wider)")
            }
        }
        return out
    }

    public func plannedStatements(for schema: Schema, context: RunContext) async throws -> [String] {
        // Its own connection: opening the sink would create its schema and state table.
        let existing = try await PostgresClient.using(endpoint, component: Self.component) { db in try await existingColumns(db, table: tableName) }
        return try tableStatements(for: Schema(schema.fields.filter { $0.name != ChangeRecords.operationColumn }), existing: existing)
    }

    /// The table for `schema`: NOT NULL, primary key and foreign keys (`references`) included.
    func createTable(_ name: String, schema: Schema) -> String {
        var parts = schema.fields.map { f in
            PostgresSQL.quote(f.name) + " " + PostgresTypes.sqlType(f.type) + (f.nullable ? "" : " NOT NULL")
        }
        let pk = schema.primaryKey.map(PostgresSQL.quote)
        if !pk.isEmpty { parts.append("PRIMARY KEY (\(pk.joined(separator: ", ")))") }
        for (column, reference) in schemaConfig.references.sorted(by: { $0.key < $1.key }) where schema[column] != nil {
            // references: table(column), checked by the config reader to be plain names.
            let open = reference.firstIndex(of: "(")!
            let (refSchema, refTable) = PostgresSQL.split(String(reference[..<open]), defaultSchema: schemaName)
            let refColumn = reference[reference.index(after: open)..<reference.index(before: reference.endIndex)]
            parts.append("FOREIGN KEY (\(PostgresSQL.quote(column))) REFERENCES \(PostgresSQL.qualified(refSchema, refTable)) (\(PostgresSQL.quote(String(refColumn))))")
        }
        return "CREATE TABLE IF NOT EXISTS \(name) (\(parts.joined(separator: ", ")))"
    }

    private func existingColumns(_ db: PostgresClient, table: String) async throws -> [String: String] {
        let rows = try await db.rows("""
            SELECT a.attname, format_type(a.atttypid, a.atttypmod) FROM pg_attribute a
            JOIN pg_class c ON c.oid = a.attrelid JOIN pg_namespace n ON n.oid = c.relnamespace
            WHERE n.nspname = $1 AND c.relname = $2 AND a.attnum > 0 AND NOT a.attisdropped
            """, [schemaName, table])
        var out: [String: String] = [:]
        for row in rows { if let name = row[0] { out[name] = row[1] ?? "" } }
        return out
    }

    // MARK: Units

    /// After the server went away (restart, failover, network): connect again, with exponential
    /// backoff for about half a minute, so one outage costs the unit in flight and not the run.
    private func reconnect() async throws {
        await client?.close()
        client = nil
        var delay = 0.25
        while true {
            do {
                client = try await PostgresClient.connect(endpoint, component: Self.component)
                tableColumns = nil
                return
            } catch let e as SluiceError where e.retryable && delay < 16 {
                try await Task.sleep(for: .seconds(delay))
                delay *= 2
            }
        }
    }

    /// Whether COPY can go straight into the table: postgres-nio double-quotes the names it is
    /// given without escaping them, so names with quotes go through the staging table.
    private var copiesDirectly: Bool {
        config.mode == .append && !tableName.contains("\"") && !schema.fields.contains { $0.name.contains("\"") }
    }

    public func begin(_ unit: WorkUnit) async throws {
        if let client, client.isClosed { try await reconnect() }
        let db = try db()
        try await db.execute("BEGIN")
        unitOpen = true
        stageName = nil
        stagedRows = 0
        lastTruncate = nil
        keys = UnitKeyTracker()
        if copiesDirectly { try await db.execute("SET LOCAL search_path TO \(PostgresSQL.quote(schemaName))") }
    }

    /// A temporary table with columns c0…cN (safe names for COPY) plus the arrival number Sluice
    /// gives each row, dropped at commit.
    private func createStage(_ db: PostgresClient) async throws {
        stageVersion += 1
        let name = "sluice_stage_\(stageVersion)"
        let columns = schema.fields.enumerated().map { "c\($0.offset) \(PostgresTypes.sqlType($0.element.type))" }
        try await db.execute("CREATE TEMP TABLE \(name) (\(columns.joined(separator: ", ")), sluice_seq bigint) ON COMMIT DROP")
        stageName = name
        stageTypes = schema.fields.map { PostgresTypes.sqlType($0.type) }
    }

    public func write(_ batch: RecordBatch) async throws -> [Rejection] {
        guard batch.rowCount > 0 else { return [] }
        let db = try db()
        if stageName == nil, !copiesDirectly {
            try await finishCopy()
            try await createStage(db)
        }
        let (clean, rejected) = Self.withoutNULCharacters(batch)
        let order = schema.fields.map { f in clean.schema.index(of: f.name) }
        var names = order.enumerated().compactMap { k, i in i == nil ? nil : (stageName == nil ? schema.fields[k].name : "c\(k)") }
        if stageName != nil { names.append("sluice_seq") }
        if copy == nil || copyColumns != names {
            try await finishCopy()
            copy = PostgresCopyStream(client: db, table: stageName ?? tableName, columns: names)
            copyColumns = names
        }
        var payload: [UInt8] = []
        payload.reserveCapacity(clean.rowCount * 64)
        PostgresCopyEncoder.encode(clean, columns: order.compactMap { $0 }, sequenceFrom: stageName == nil ? nil : stagedRows, into: &payload)
        if config.mode == .replicate { noteTruncates(clean) }
        if stageName != nil { stagedRows += clean.rowCount }
        if config.mode == .merge { keys.note(clean, key: primaryKey) }
        try await copy!.send(payload)
        return rejected
    }

    /// Ends the open COPY, if any, once the server has taken its rows.
    private func finishCopy() async throws {
        guard let open = copy else { return }
        copy = nil
        try await open.finish()
    }

    /// PostgreSQL text cannot hold the NUL character: such rows are rejected, not the batch.
    static func withoutNULCharacters(_ batch: RecordBatch) -> (RecordBatch, [Rejection]) {
        var bad: [Int: String] = [:]
        for (c, column) in batch.columns.enumerated() where column.type == .string || column.type == .json {
            for row in 0..<batch.rowCount where !column.isNull(row) && bad[row] == nil {
                if column.withBytes(at: row, { $0.contains(0) }) { bad[row] = batch.schema.fields[c].name }
            }
        }
        guard !bad.isEmpty else { return (batch, []) }
        let rejections = bad.keys.sorted().map { row in
            Rejection(reason: .sink, field: bad[row], message: "\(bad[row]!) contains a NUL character, which PostgreSQL text cannot store",
                      origin: batch.origins.isEmpty ? nil : batch.origins[row], record: batch.schema.fields.indices.map { (batch.schema.fields[$0].name, batch.columns[$0].value(at: row)) })
        }
        return (batch.taking((0..<batch.rowCount).filter { bad[$0] == nil }), rejections)
    }

    public func commit(_ unit: WorkUnit, state: [StateEntry]) async throws {
        let db = try db()
        try await finishCopy()
        if let stageName {
            if config.mode == .merge {
                try await merge(from: stageName, db: db)
            } else if config.mode == .replicate {
                try await replicate(from: stageName, db: db)
            } else {
                let columns = schema.fields.map { PostgresSQL.quote($0.name) }
                let stageColumns = schema.fields.indices.map(staged)
                let destination = config.mode == .replace ? replaceTable : target
                try await db.execute("""
                    INSERT INTO \(destination) (\(columns.joined(separator: ", "))) SELECT \(stageColumns.joined(separator: ", ")) FROM \(stageName) s ORDER BY sluice_seq
                    """)
            }
        }
        for entry in state {
            try await db.stream("""
                INSERT INTO \(stateTable) (pipeline, key, value) VALUES ($1, $2, $3)
                ON CONFLICT (pipeline, key) DO UPDATE SET value = EXCLUDED.value, updated_at = now()
                """, [pipeline, entry.key, entry.value]) { _ in }
        }
        try await db.execute("COMMIT")
        unitOpen = false
        stageName = nil
    }

    public func rollback(_ unit: WorkUnit) async throws {
        await copy?.abort()
        copy = nil
        guard unitOpen, let client else { return }
        unitOpen = false
        stageName = nil
        tableColumns = nil   // columns added in the unit were rolled back with it
        try await client.execute("ROLLBACK")
    }

    public func finish(context: RunContext) async throws {
        // Nothing was prepared (no rows came): there is no staging table to swap in.
        guard config.mode == .replace, !schema.fields.isEmpty, let db = client else { return }
        let columns = schema.fields.map { PostgresSQL.quote($0.name) }.joined(separator: ", ")
        // One transaction: readers see the old rows until the new ones are all there.
        for statement in ["BEGIN", "DELETE FROM \(target)", "INSERT INTO \(target) (\(columns)) SELECT \(columns) FROM \(replaceTable)",
                          "DROP TABLE \(replaceTable)", "COMMIT"] {
            try await db.execute(statement)
        }
    }

    public func close() async {
        await copy?.abort()
        copy = nil
        if unitOpen { try? await client?.execute("ROLLBACK") }
        await client?.close()
        client = nil
    }
}
