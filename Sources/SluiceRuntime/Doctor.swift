import Foundation
import SluiceConfig
import SluiceConnectors
import SluiceCore

/// `sluice doctor`: checks that every source and sink of a project can be used — reachable,
/// credentials accepted, privileges granted, tables and paths present — without moving data.
public enum Doctor {
    public struct Finding: Sendable, Codable {
        public var pipeline: String
        public var component: String
        public var ok: Bool
        public var message: String
        public var fix: String?
    }

    public static func check(project: ProjectConfig) async -> [Finding] {
        var findings: [Finding] = []
        for pipeline in project.pipelines {
            let context = RunContext(pipeline: pipeline.name, runID: "doctor", baseDirectory: project.baseDirectory)
            findings += await checkSource(pipeline, context: context)
            findings += await checkSink(pipeline, context: context)
        }
        return findings
    }

    static func checkSource(_ p: PipelineConfig, context: RunContext) async -> [Finding] {
        switch p.source {
        case .files(let c):
            let matches = FileSystem.glob(context.resolve(c.path))
            return [matches.isEmpty
                ? Finding(pipeline: p.name, component: "source files", ok: false, message: "no file matches \(c.path)",
                          fix: "check the path; relative paths resolve against the project file's directory")
                : Finding(pipeline: p.name, component: "source files", ok: true, message: "\(matches.count) file(s) match \(c.path)")]
        case .http(let c):
            let (ok, message, fix) = await HTTPSource.probe(c, retry: p.retry)
            return [Finding(pipeline: p.name, component: "source http", ok: ok, message: message, fix: fix)]
        case .postgres(let c) where c.mode == .cdc:
            return await changeCapture(p.name, c)
        case .webhook(let c):
            let dir = SpoolSource.directory(c, pipeline: p.name, context: context)
            var finding = writableDirectory(p.name, "source webhook", dir + "/x")
            if finding.ok { finding.message = "spool \(dir) is writable; served at POST \(c.path) by sluice serve" + (c.auth == nil ? " (no auth: anyone who reaches the port may post)" : "") }
            return [finding]
        case .postgres(let c):
            return [await postgres(p.name, "source postgres", url: c.url) { db in
                if let table = c.table {
                    let name = qualifiedForLookup(table)
                    let row = try await db.rows("""
                        SELECT (to_regclass($1) IS NOT NULL)::text,
                               (CASE WHEN to_regclass($1) IS NOT NULL THEN has_table_privilege(to_regclass($1), 'SELECT') END)::text
                        """, [name]).first ?? []
                    guard row.first == "true" else {
                        return (false, "table \(table) does not exist (or is not visible to \(db.endpoint.user))",
                                "check the name (schema.table), or GRANT USAGE ON SCHEMA … TO \(db.endpoint.user)")
                    }
                    guard row.last == "true" else {
                        return (false, "\(db.endpoint.user) may not read \(table)", "GRANT SELECT ON \(table) TO \(db.endpoint.user)")
                    }
                    return (true, "table \(table) readable", nil)
                }
                try await db.execute("SELECT * FROM (\(c.query ?? "")) AS sluice_probe LIMIT 0")
                return (true, "query runs", nil)
            }]
        }
    }

    static func checkSink(_ p: PipelineConfig, context: RunContext) async -> [Finding] {
        switch p.sink {
        case .sqlite(let c):
            return [writableDirectory(p.name, "sink sqlite", (context.resolve(c.path) as NSString).deletingLastPathComponent)]
        case .files(let c):
            return [writableDirectory(p.name, "sink files", context.resolve(c.path))]
        case .postgres(let c):
            return [await postgres(p.name, "sink postgres", url: c.url) { db in
                let (schema, table) = PostgresSQL.split(c.table)
                let name = PostgresSQL.qualified(schema, table)
                let row = try await db.rows("""
                    SELECT (to_regclass($1) IS NOT NULL)::text,
                           (CASE WHEN to_regclass($1) IS NOT NULL THEN has_table_privilege(to_regclass($1), 'INSERT')
                                AND has_table_privilege(to_regclass($1), 'UPDATE') AND has_table_privilege(to_regclass($1), 'DELETE') END)::text,
                           (SELECT has_schema_privilege(oid, 'CREATE') FROM pg_namespace WHERE nspname = $2)::text,
                           has_database_privilege(current_database(), 'CREATE')::text
                    """, [name, schema]).first ?? []
                let tableExists = row.count > 0 && row[0] == "true"
                if tableExists {
                    guard row[1] == "true" else {
                        return (false, "\(db.endpoint.user) may not write \(c.table)",
                                "GRANT INSERT, UPDATE, DELETE ON \(c.table) TO \(db.endpoint.user)")
                    }
                    return (true, "table \(c.table) writable", nil)
                }
                guard c.create else {
                    return (false, "table \(c.table) does not exist and create: false", "create the table, or set create: true")
                }
                let schemaExists = row.count > 2 && row[2] != nil
                if schemaExists ? row[2] == "true" : (row.count > 3 && row[3] == "true") {
                    return (true, "table \(c.table) will be created", nil)
                }
                return (false, "\(db.endpoint.user) may not create \(c.table)",
                        schemaExists ? "GRANT CREATE ON SCHEMA \(schema) TO \(db.endpoint.user)"
                                     : "CREATE SCHEMA \(schema) AUTHORIZATION \(db.endpoint.user)")
            }]
        }
    }

    /// `table` as `to_regclass` parses it: quoted parts, the search path when it has no schema.
    static func qualifiedForLookup(_ table: String) -> String {
        let (schema, name) = PostgresSQL.split(table, defaultSchema: "")
        return schema.isEmpty ? PostgresSQL.quote(name) : PostgresSQL.qualified(schema, name)
    }

    /// Connects (reachability, credentials) and runs `probe` (privileges, tables).
    static func postgres(_ pipeline: String, _ component: String, url: String,
                         probe: (PostgresClient) async throws -> (Bool, String, String?)) async -> Finding {
        do {
            let endpoint = try PostgresEndpoint(url: url)
            let (ok, message, fix) = try await PostgresClient.using(endpoint, component: component, probe)
            return Finding(pipeline: pipeline, component: component, ok: ok, message: "\(endpoint.display): \(message)", fix: fix)
        } catch let e as SluiceError {
            return Finding(pipeline: pipeline, component: component, ok: false, message: e.message,
                           fix: e.fix ?? "check the URL, and that the server accepts connections from this host")
        } catch {
            return Finding(pipeline: pipeline, component: component, ok: false, message: "\(error)", fix: nil)
        }
    }

    static func writableDirectory(_ pipeline: String, _ component: String, _ path: String) -> Finding {
        var dir = path.isEmpty ? "." : path
        // The nearest existing ancestor must be writable for Sluice to create the rest.
        while !FileManager.default.fileExists(atPath: dir), dir != "/", !dir.isEmpty { dir = (dir as NSString).deletingLastPathComponent }
        if dir.isEmpty { dir = "." }
        return FileManager.default.isWritableFile(atPath: dir)
            ? Finding(pipeline: pipeline, component: component, ok: true, message: "\(path) writable")
            : Finding(pipeline: pipeline, component: component, ok: false, message: "\(dir) is not writable",
                      fix: "choose another path, or grant write access to \(dir)")
    }
}
