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

    /// Forgets every saved position of the pipeline, so the next run starts from scratch.
    public static func reset(project: ProjectConfig, pipeline: PipelineConfig) async throws -> Int {
        let before = try await show(project: project, pipeline: pipeline).count
        try ProjectRunner(project: project).openStore().clearState(pipeline: pipeline.name)
        if case .sqlite(let c) = pipeline.sink {
            let context = RunContext(pipeline: pipeline.name, runID: "state", baseDirectory: project.baseDirectory)
            if FileManager.default.fileExists(atPath: context.resolve(c.path)) {
                let db = try SQLiteDatabase(path: context.resolve(c.path))
                if try db.tableExists("_sluice_state") {
                    try db.run("DELETE FROM _sluice_state WHERE pipeline = ?", [.string(pipeline.name)])
                }
            }
        }
        if case .postgres(let c) = pipeline.sink {
            let sink = try PostgresSink(config: c, schema: pipeline.schema)
            let context = RunContext(pipeline: pipeline.name, runID: "state", baseDirectory: project.baseDirectory)
            try await sink.open(context: context)
            do {
                try await sink.clearState(context: context, keys: nil)
                await sink.close()
            } catch {
                await sink.close()
                throw error
            }
        }
        return before
    }
}
