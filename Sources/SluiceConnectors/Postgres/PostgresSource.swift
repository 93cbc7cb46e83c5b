import Foundation
import PostgresNIO
import SluiceConfig
import SluiceCore
import SluiceFormats

/// Reads a PostgreSQL table or query.
///
/// - `full`: one streamed SELECT (a consistent snapshot), batches of `batch_size` rows, rows pulled
///   from the server only as fast as the sink takes them.
/// - `incremental`: keyset pages `WHERE (cursor, key…) > ($1, $2…) ORDER BY cursor, key… LIMIT n`.
///   The key breaks ties, so no row is skipped or read twice however many share a cursor value.
///   Each page is committed with its last (cursor, key) as the checkpoint, so a crash or an
///   outage resumes after the last committed page. Rows whose cursor is NULL are never read.
public struct PostgresSource: Source {
    let config: PostgresSourceConfig
    let schemaConfig: SchemaConfig
    let endpoint: PostgresEndpoint
    /// The position each unit resumes from: the saved one, then each checkpoint handed on.
    private let positions = PositionBox()
    static let component = "source postgres"
    static let cursorKey = "cursor"

    public init(config: PostgresSourceConfig, schema: SchemaConfig) throws {
        self.config = config
        schemaConfig = schema
        endpoint = try PostgresEndpoint(url: config.url)
    }

    var unitID: String { config.table.map { "table:\($0)" } ?? "query" }

    public func plan(state: [String: String], context: RunContext) async throws -> [WorkUnit] {
        if config.mode == .incremental, let saved = state[Self.cursorKey] {
            guard let position = Position(json: saved) else {
                throw SluiceError(.state, "the saved cursor '\(saved)' is not readable", component: Self.component,
                                  fix: "sluice state reset \(context.pipeline) to read the table again from the start")
            }
            positions.set(unitID, position)
        }
        return [WorkUnit(id: unitID, location: "\(endpoint.display) \(config.table ?? "query")",
                         start: config.mode == .incremental ? state[Self.cursorKey].map { "\(Self.cursorKey)=\($0)" } : nil)]
    }

    /// A saved keyset position: the cursor value and the key values of the last row, as text.
    struct Position: Codable, Equatable {
        var cursor: String
        var key: [String]

        init(cursor: String, key: [String]) { self.cursor = cursor; self.key = key }
        init?(json: String) {
            guard let p = try? JSONDecoder().decode(Position.self, from: Data(json.utf8)) else { return nil }
            self = p
        }
        var json: String { String(decoding: try! JSONEncoder().encode(self), as: UTF8.self) }
    }

    public func read(_ unit: WorkUnit, context: RunContext, emit: (SourceBatch) async throws -> Void) async throws -> [StateEntry] {
        try await PostgresClient.using(endpoint, component: Self.component) { db in try await read(db, context: context, emit: emit) }
    }

    /// The catalog's columns as Sluice types; the pipeline's own declarations win.
    private func schema(of relation: PostgresRelation) -> Schema {
        let key = config.primaryKey.isEmpty ? relation.primaryKey : config.primaryKey
        return Schema(relation.columns.map { c in
            schemaConfig.declared[c.name] ?? Field(c.name, PostgresTypes.sluiceType(c), nullable: c.nullable, primaryKey: key.contains(c.name))
        })
    }

    public func describe(context: RunContext) async throws -> Schema? {
        try await PostgresClient.using(endpoint, component: Self.component) { db in
            schema(of: try await PostgresRelation.describe(db, table: config.table, query: config.query, component: Self.component))
        }
    }

    private func read(_ db: PostgresClient, context: RunContext, emit: (SourceBatch) async throws -> Void) async throws -> [StateEntry] {
        let relation = try await PostgresRelation.describe(db, table: config.table, query: config.query, component: Self.component)
        let key = config.primaryKey.isEmpty ? relation.primaryKey : config.primaryKey
        let declared = schema(of: relation)
        let typer = BatchTyper(declared: declared, formats: schemaConfig.formats)
        let select = relation.columns.map(PostgresTypes.selectExpression).joined(separator: ", ")
        // JSON columns arrive as JSON text, to be kept as is rather than quoted as a string.
        let kinds = relation.columns.map { PostgresTypes.sluiceType($0) == .json ? RawKind.nested : RawKind.text }
        var builder = BatchBuilder(names: relation.columns.map(\.name), kinds: kinds, typer: typer)

        guard config.mode == .incremental, let cursorField = config.cursorField else {
            try await db.stream("SELECT \(select) FROM \(relation.from)") { row in
                builder.append(row)
                if builder.rows >= config.batchSize { try await emit(builder.take()) }
            }
            if builder.rows > 0 { try await emit(builder.take()) }
            return []
        }

        guard !key.isEmpty else {
            throw SluiceError(.config, "incremental reads of \(config.table ?? "the query") need a primary key to break cursor ties, and it has none",
                              component: Self.component, fix: "add primary_key: [column, …] to the source")
        }
        let order = [cursorField] + key
        var types: [String] = []
        for name in order {
            guard let c = relation.columns.first(where: { $0.name == name }) else {
                throw SluiceError(.config, "column \(name) is not in \(config.table ?? "the query")", component: Self.component,
                                  fix: "available columns: \(relation.columns.map(\.name).joined(separator: ", "))")
            }
            types.append(c.sqlType)
        }
        // Qualified: a bare name in ORDER BY would mean the select list's text column of that name.
        let orderSQL = order.map { "sluice_src." + PostgresSQL.quote($0) }.joined(separator: ", ")
        // The position columns come back as text, after the row's own columns.
        let positionSelect = order.map { "\(PostgresSQL.quote($0))::text" }.joined(separator: ", ")
        let after = "(\(orderSQL)) > (\(types.enumerated().map { "$\($0.offset + 1)::\($0.element)" }.joined(separator: ", ")))"
        var position = positions.get(unitID)
        while true {
            var sql = "SELECT \(select), \(positionSelect) FROM \(relation.from) WHERE sluice_src.\(PostgresSQL.quote(cursorField)) IS NOT NULL"
            var parameters: [String?] = []
            if let position {
                sql += " AND \(after)"
                parameters = [position.cursor] + position.key
            }
            sql += " ORDER BY \(orderSQL) LIMIT \(config.batchSize)"
            var lastRow: PostgresRow?
            try await db.stream(sql, parameters) { row in
                builder.append(row.prefix(relation.columns.count))
                lastRow = row
            }
            let last = lastRow?.dropFirst(relation.columns.count).map { $0.bytes.map { String(buffer: $0) } } ?? []
            let pageRows = builder.rows
            guard pageRows > 0 else { break }
            guard let cursor = last.first ?? nil else { break }
            let next = Position(cursor: cursor, key: last.dropFirst().map { $0 ?? "" })
            var batch = builder.take()
            batch.checkpoint = [StateEntry(key: Self.cursorKey, value: next.json)]
            try await emit(batch)
            position = next
            positions.set(unitID, next)
            if pageRows < config.batchSize { break }
        }
        return []
    }
}

/// Collects text cells into a raw batch and types it.
struct BatchBuilder {
    let names: [String]
    let kinds: [RawKind]
    let typer: BatchTyper
    private var raw: RawBatch
    private(set) var rows = 0
    private var ordinal = 0

    init(names: [String], kinds: [RawKind], typer: BatchTyper) {
        self.names = names
        self.kinds = kinds
        self.typer = typer
        raw = RawBatch(names: names)
        raw.columns = names.map { _ in RawColumn() }
    }

    mutating func append<Cells: Collection<PostgresCell>>(_ cells: Cells) {
        for (c, cell) in cells.enumerated() {
            if let bytes = cell.bytes {
                bytes.withUnsafeReadableBytes { raw.columns[c].append(kinds[c], $0) }
            } else {
                raw.columns[c].appendNull()
            }
        }
        rows += 1
        ordinal += 1
        raw.origins.append(ordinal)
    }

    /// The rows so far, typed; rows whose values do not convert come back as rejections.
    mutating func take() -> SourceBatch {
        var done = raw
        raw = RawBatch(names: names)
        raw.columns = names.map { _ in RawColumn() }
        rows = 0
        done.bytesRead = done.columns.reduce(0) { $0 + $1.bytes.count }
        let (batch, rejected) = typer.type(done)
        return SourceBatch(batch: batch, rejected: rejected, bytesRead: done.bytesRead)
    }
}

/// The columns and key of a table or query, from the catalog.
struct PostgresRelation {
    var columns: [PostgresTypes.Column]
    var primaryKey: [String]
    /// What to put after FROM: the quoted table, or the query as a subquery; aliased `sluice_src`.
    var from: String

    static func describe(_ db: PostgresClient, table: String?, query: String?, component: String) async throws -> PostgresRelation {
        var schema: String, name: String, from: String
        if let table {
            (schema, name) = PostgresSQL.split(table, defaultSchema: "")
            if schema.isEmpty {
                schema = try await db.rows("""
                    SELECT n.nspname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
                    WHERE c.relname = $1 AND n.nspname = ANY (current_schemas(false)) ORDER BY array_position(current_schemas(false), n.nspname) LIMIT 1
                    """, [name]).first?.first.flatMap { $0 } ?? "public"
            }
            from = PostgresSQL.qualified(schema, name) + " AS sluice_src"
        } else {
            // The query's columns: described through a temporary view of it.
            try await db.execute("CREATE OR REPLACE TEMP VIEW sluice_query AS \(query ?? "")")
            schema = try await db.rows("SELECT nspname FROM pg_namespace WHERE oid = pg_my_temp_schema()").first?.first.flatMap { $0 } ?? "pg_temp"
            name = "sluice_query"
            from = "(\(query ?? "")) AS sluice_src"
        }
        let rows = try await db.rows("""
            SELECT a.attname, format_type(a.atttypid, a.atttypmod), t.typcategory::text, bt.typname::text, a.attnotnull::text
            FROM pg_attribute a JOIN pg_class c ON c.oid = a.attrelid JOIN pg_namespace n ON n.oid = c.relnamespace
            JOIN pg_type t ON t.oid = a.atttypid
            JOIN pg_type bt ON bt.oid = CASE WHEN t.typtype = 'd' THEN t.typbasetype ELSE t.oid END
            WHERE n.nspname = $1 AND c.relname = $2 AND a.attnum > 0 AND NOT a.attisdropped ORDER BY a.attnum
            """, [schema, name])
        guard !rows.isEmpty else {
            throw SluiceError(.source, "table \(table ?? name) does not exist (or has no columns) in schema \(schema)", component: component,
                              location: db.endpoint.display, fix: "check the name (schema.table) and that the user may see it")
        }
        let columns = rows.map { r in
            PostgresTypes.Column(name: r[0] ?? "", sqlType: r[1] ?? "text", category: r[2] ?? "S", baseType: r[3] ?? "text", nullable: r[4] != "true")
        }
        let primaryKey = table == nil ? [] : try await Self.primaryKey(db, schema: schema, table: name)
        return PostgresRelation(columns: columns, primaryKey: primaryKey, from: from)
    }

    /// The primary key columns of `schema.table`, in key order (empty without one).
    static func primaryKey(_ db: PostgresClient, schema: String, table: String) async throws -> [String] {
        try await db.rows("""
            SELECT a.attname FROM pg_index i
            JOIN pg_class c ON c.oid = i.indrelid JOIN pg_namespace n ON n.oid = c.relnamespace
            JOIN LATERAL unnest(i.indkey) WITH ORDINALITY AS k(attnum, ord) ON true
            JOIN pg_attribute a ON a.attrelid = c.oid AND a.attnum = k.attnum
            WHERE n.nspname = $1 AND c.relname = $2 AND i.indisprimary ORDER BY k.ord
            """, [schema, table]).compactMap { $0[0] }
    }
}

/// Positions shared between `plan` and the reads of one run.
final class PositionBox: @unchecked Sendable {
    private let lock = NSLock()
    private var values: [String: PostgresSource.Position] = [:]
    func get(_ unit: String) -> PostgresSource.Position? { lock.withLock { values[unit] } }
    func set(_ unit: String, _ value: PostgresSource.Position) { lock.withLock { values[unit] = value } }
}
