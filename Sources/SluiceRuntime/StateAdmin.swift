import Foundation
import SluiceConfig
import SluiceConnectors
import SluiceCore

/// `sluice state show|reset`: positions live in the sink (SQL sinks, same transaction as the
/// rows) or in the state store (other sinks); these read and clear both.
public enum StateAdmin {
    public static func show(project: ProjectConfig, pipeline: PipelineConfig) async throws -> [StateEntry] {
        let runner = ProjectRunner(project: project)
        var state = try runner.openStore().loadState(pipeline: pipeline.name)
        if case .sqlite(let c) = pipeline.sink {
            let context = RunContext(pipeline: pipeline.name, runID: "state", baseDirectory: project.baseDirectory)
            if FileManager.default.fileExists(atPath: context.resolve(c.path)) {
                let db = try SQLiteDatabase(path: context.resolve(c.path))
                if try db.tableExists("_sluice_state") {
                    for row in try db.query("SELECT key, value FROM _sluice_state WHERE pipeline = ?", [.string(pipeline.name)]) {
                        state[row[0].text] = row[1].text
                    }
                }
            }
        }
        if case .postgres(let c) = pipeline.sink {
            let sink = try PostgresSink(config: c, schema: pipeline.schema)
            let context = RunContext(pipeline: pipeline.name, runID: "state", baseDirectory: project.baseDirectory)
            try await sink.open(context: context)
            do {
                state.merge(try await sink.loadState(context: context)) { _, b in b }
                await sink.close()
            } catch {
                await sink.close()
                throw error
            }
        }
        return state.keys.sorted().map { StateEntry(key: $0, value: state[$0]!) }
    }

    /// Forgets the pipeline's saved positions, so the next run starts from scratch: all of them,
    /// or only `keys`. Returns how many there were.
    public static func reset(project: ProjectConfig, pipeline: PipelineConfig, keys: [String]? = nil) async throws -> Int {
        let saved = try await show(project: project, pipeline: pipeline).map(\.key)
        let removed = keys.map { keys in saved.filter(keys.contains).count } ?? saved.count
        try ProjectRunner(project: project).openStore().clearState(pipeline: pipeline.name, keys: keys)
        if case .sqlite(let c) = pipeline.sink {
            let context = RunContext(pipeline: pipeline.name, runID: "state", baseDirectory: project.baseDirectory)
            if FileManager.default.fileExists(atPath: context.resolve(c.path)) {
                let db = try SQLiteDatabase(path: context.resolve(c.path))
                if try db.tableExists("_sluice_state") {
                    if let keys {
                        for k in keys { try db.run("DELETE FROM _sluice_state WHERE pipeline = ? AND key = ?", [.string(pipeline.name), .string(k)]) }
                    } else {
                        try db.run("DELETE FROM _sluice_state WHERE pipeline = ?", [.string(pipeline.name)])
                    }
                }
            }
        }
        if case .postgres(let c) = pipeline.sink {
            let sink = try PostgresSink(config: c, schema: pipeline.schema)
            let context = RunContext(pipeline: pipeline.name, runID: "state", baseDirectory: project.baseDirectory)
            try await sink.open(context: context)
            do {
                try await sink.clearState(context: context, keys: keys)
                await sink.close()
            } catch {
                await sink.close()
                throw error
            }
        }
        return removed
    }

    /// The state key of one captured table's snapshot (`--table`), or a message saying why there is none.
    public static func snapshotKey(pipeline: PipelineConfig, table: String) -> Result<String, SluiceError> {
        guard case .postgres(let c) = pipeline.source, c.mode == .cdc else {
            return .failure(SluiceError(.config, "\(pipeline.name) is not a change data capture pipeline; --table re-reads one table of a mode: cdc source",
                                        fix: "reset the whole pipeline: sluice state reset \(pipeline.name)"))
        }
        let matches = c.tables.filter { $0 == table || $0.split(separator: ".").last.map(String.init) == table }
        guard matches.count == 1 else {
            return .failure(SluiceError(.config, "\(pipeline.name) captures \(c.tables.joined(separator: ", ")); '\(table)' is \(matches.isEmpty ? "not one of them" : "ambiguous")",
                                        fix: "name the table as schema.table"))
        }
        let qualified = matches[0].contains(".") ? matches[0] : "public." + matches[0]
        return .success(PostgresChangeSource.snapshotPrefix + qualified)
    }
}
