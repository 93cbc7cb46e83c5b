import Foundation
import SluiceConfig
import SluiceConnectors
import SluiceCore

/// Rows already in a sink's table: the parents of a `for_each` source (another pipeline's table),
/// and the keys a `unique` rule with `scope: sink` must not see again (the pipeline's own).
enum SinkTable {
    /// The distinct rows of `fields` in the table `sink` loads, sorted; nil when the table does
    /// not exist yet.
    static func distinct(_ fields: [String], in sink: SinkConfig, project: ProjectConfig) async throws -> [[Value]]? {
        switch sink {
        case .sqlite(let c):
            let path = c.path.hasPrefix("/") || project.baseDirectory == "." ? c.path : project.baseDirectory + "/" + c.path
            guard FileManager.default.fileExists(atPath: path) else { return nil }
            let db = try SQLiteDatabase(path: path)
            guard try !db.query("SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?", [.string(c.table)]).isEmpty else { return nil }
            let q = SQLiteDatabase.quoteIdentifier
            let columns = fields.map(q).joined(separator: ", ")
            return try db.query("SELECT DISTINCT \(columns) FROM \(q(c.table)) WHERE \(q(fields[0])) IS NOT NULL ORDER BY \(columns)")
        case .postgres(let c):
            let (schema, table) = PostgresSQL.split(c.table)
            let columns = fields.map(PostgresSQL.quote).joined(separator: ", ")
            let selected = fields.map { "\(PostgresSQL.quote($0))::text" }.joined(separator: ", ")
            let rows: [[String?]]? = try await PostgresClient.using(try PostgresEndpoint(url: c.url)) { db in
                guard try await !db.rows("SELECT 1 FROM pg_catalog.pg_tables WHERE schemaname = $1 AND tablename = $2", [schema, table]).isEmpty else { return nil }
                return try await db.rows("SELECT \(selected) FROM (SELECT DISTINCT \(columns) FROM \(PostgresSQL.qualified(schema, table)) "
                                         + "WHERE \(PostgresSQL.quote(fields[0])) IS NOT NULL ORDER BY \(columns)) AS keys")
            }
            // Text from the server; whole numbers stay numbers, so `{id}` and added columns read naturally.
            return rows?.map { $0.map { text in text.map { Int64($0).map(Value.int64) ?? .string($0) } ?? .null } }
        case .files:
            throw SluiceError(.config, "this reads a table, and the pipeline writes files", component: "sink files",
                              fix: "load it into a sqlite or postgres sink")
        }
    }
}

/// The parents of a `for_each` source: the distinct values of its fields in the table the upstream
/// pipeline loads, in a stable order (so units are planned the same way every run).
enum ParentRecords {
    static func load(_ each: HTTPSourceConfig.ForEach, for pipeline: String, project: ProjectConfig) async throws -> [[String: Value]] {
        guard let upstream = project.pipelines.first(where: { $0.name == each.pipeline }) else {
            throw SluiceError(.config, "for_each names unknown pipeline '\(each.pipeline)'", pipeline: pipeline, component: "source http")
        }
        let rows: [[Value]]?
        do {
            rows = try await SinkTable.distinct(each.fields, in: upstream.sink, project: project)
        } catch {
            let cause = (error as? SluiceError)?.message ?? "\(error)"
            throw SluiceError(.source, "cannot read the parents (\(each.fields.joined(separator: ", "))) from \(each.pipeline)'s table: \(cause)",
                              pipeline: pipeline, component: "source http for_each",
                              fix: "for_each.field must name a column that \(each.pipeline) loads")
        }
        guard let rows else {
            throw SluiceError(.source, "no parent records: pipeline \(each.pipeline) has not loaded anything yet", pipeline: pipeline,
                              component: "source http for_each", fix: "run \(each.pipeline) first (it is in depends_on, so `sluice run` does)")
        }
        return rows.map { Dictionary(uniqueKeysWithValues: zip(each.fields, $0)) }
    }
}
