import Foundation
import SluiceConfig
import SluiceConnectors
import SluiceCore

/// The parents of a `for_each` source: the distinct values of its fields in the table the upstream
/// pipeline loads, in a stable order (so units are planned the same way every run).
enum ParentRecords {
    static func load(_ each: HTTPSourceConfig.ForEach, for pipeline: String, project: ProjectConfig) async throws -> [[String: Value]] {
        guard let upstream = project.pipelines.first(where: { $0.name == each.pipeline }) else {
            throw SluiceError(.config, "for_each names unknown pipeline '\(each.pipeline)'", pipeline: pipeline, component: "source http")
        }
        let component = "source http for_each"
        switch upstream.sink {
        case .sqlite(let c):
            let path = c.path.hasPrefix("/") || project.baseDirectory == "." ? c.path : project.baseDirectory + "/" + c.path
            guard FileManager.default.fileExists(atPath: path) else { throw notLoaded(each, pipeline: pipeline, where: path) }
            let db = try SQLiteDatabase(path: path)
            let q = SQLiteDatabase.quoteIdentifier
            let columns = each.fields.map(q).joined(separator: ", ")
            let sql = "SELECT DISTINCT \(columns) FROM \(q(c.table)) WHERE \(q(each.fields[0])) IS NOT NULL ORDER BY \(columns)"
            do {
                return try db.query(sql).map { Dictionary(uniqueKeysWithValues: zip(each.fields, $0)) }
            } catch {
                throw cannotRead(each, pipeline: pipeline, table: "\(path) table \(c.table)", error: error)
            }
        case .postgres(let c):
            let (schema, table) = PostgresSQL.split(c.table)
            let columns = each.fields.map(PostgresSQL.quote).joined(separator: ", ")
            let selected = each.fields.map { "\(PostgresSQL.quote($0))::text" }.joined(separator: ", ")
            let sql = "SELECT \(selected) FROM (SELECT DISTINCT \(columns) FROM \(PostgresSQL.qualified(schema, table)) "
                + "WHERE \(PostgresSQL.quote(each.fields[0])) IS NOT NULL ORDER BY \(columns)) AS parents"
            let rows: [[String?]]
            do {
                rows = try await PostgresClient.using(try PostgresEndpoint(url: c.url), component: component) { try await $0.rows(sql) }
            } catch {
                throw cannotRead(each, pipeline: pipeline, table: "table \(c.table)", error: error)
            }
            // Text from the server; whole numbers stay numbers, so `{id}` and the added column read naturally.
            return rows.map { row in
                Dictionary(uniqueKeysWithValues: zip(each.fields, row.map { text in
                    guard let text else { return Value.null }
                    return Int64(text).map(Value.int64) ?? .string(text)
                }))
            }
        case .files:
            throw SluiceError(.config, "for_each reads parents from a table; pipeline \(each.pipeline) writes files", pipeline: pipeline,
                              component: component, fix: "load \(each.pipeline) into a sqlite or postgres sink")
        }
    }

    private static func notLoaded(_ each: HTTPSourceConfig.ForEach, pipeline: String, where location: String) -> SluiceError {
        SluiceError(.source, "no parent records: pipeline \(each.pipeline) has not loaded anything yet", pipeline: pipeline,
                    component: "source http for_each", location: location, fix: "run \(each.pipeline) first (it is in depends_on, so `sluice run` does)")
    }

    private static func cannotRead(_ each: HTTPSourceConfig.ForEach, pipeline: String, table: String, error: any Error) -> SluiceError {
        let cause = (error as? SluiceError)?.message ?? "\(error)"
        return SluiceError(.source, "cannot read the parents (\(each.fields.joined(separator: ", "))) from \(each.pipeline)'s \(table): \(cause)",
                           pipeline: pipeline, component: "source http for_each",
                           fix: "for_each.field must name a column that \(each.pipeline) loads; run \(each.pipeline) first if its table does not exist yet")
    }
}
