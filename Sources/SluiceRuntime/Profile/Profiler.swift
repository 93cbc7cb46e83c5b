import Foundation
import SluiceConfig
import SluiceConnectors
import SluiceCore

/// `sluice profile`: one streaming pass over a file, or over what a pipeline's source reads
/// (through its transforms, nothing written), profiling every column. Reading and profiling run
/// on two tasks joined by a bounded channel, so memory stays bounded and both cores work.
public enum Profiler {
    public static func profile(file: String) async throws -> ProfileReport {
        guard FileManager.default.fileExists(atPath: file) else {
            throw SluiceError(.config, "no such file or pipeline: \(file)", component: "profile",
                              fix: "give a data file (csv, jsonl, json, parquet) or the name of a pipeline in the project")
        }
        guard let format = FileFormat.guessed(from: file) else {
            throw SluiceError(.config, "cannot tell the format of \(file) from its name", component: "profile",
                              fix: "name it .csv, .jsonl, .json or .parquet (optionally .gz or .zst)")
        }
        let source = FilesSource(config: FilesSourceConfig(path: file, format: format, incremental: .none), schema: SchemaConfig())
        return try await run(source, transforms: [], name: file, context: RunContext(pipeline: "profile", runID: "profile"))
    }

    public static func profile(pipeline: PipelineConfig, project: ProjectConfig) async throws -> ProfileReport {
        let source = try PipelineRunner.makeSource(pipeline)
        var context = RunContext(pipeline: pipeline.name, runID: "profile", baseDirectory: project.baseDirectory,
                                 batchRows: pipeline.batchRows, batchBytes: pipeline.batchBytes)
        context.dryRun = true   // a CDC source must not create its slot for a profile
        let report = try await run(source, transforms: Transforms.make(pipeline.transforms), name: pipeline.name, context: context)
        await source.close()
        return report
    }

    static func run(_ source: any Source, transforms: [any Transform], name: String, context: RunContext) async throws -> ProfileReport {
        let units = try await source.plan(state: [:], context: context)
        let channel = BoundedChannel<RecordBatch>(capacity: 4)
        let reader = Task {
            do {
                for unit in units {
                    var unitContext = context
                    unitContext.unit = unit.location
                    _ = try await source.read(unit, context: unitContext) { sourceBatch in
                        var batch = sourceBatch.batch
                        for t in transforms { batch = try t.apply(batch, context: unitContext).0 }
                        guard await channel.send(batch) else { throw CancellationError() }
                    }
                }
            } catch {
                await channel.close()
                throw error
            }
            await channel.close()
        }
        var report = ProfileReport(source: name)
        while let batch = await channel.receive() { report.add(batch) }
        try await reader.value
        return report
    }
}

/// The profile of every column, in the order columns first appeared.
public struct ProfileReport {
    public let source: String
    public private(set) var rows = 0
    var columns: [ColumnProfile] = []
    private var index: [String: Int] = [:]

    init(source: String) { self.source = source }

    mutating func add(_ batch: RecordBatch) {
        for (i, field) in batch.schema.fields.enumerated() {
            if index[field.name] == nil {
                index[field.name] = columns.count
                var profile = ColumnProfile(name: field.name, type: field.type)
                // A column that appears late was null in the rows before.
                if rows > 0 { profile.addMissing(rows) }
                columns.append(profile)
            }
            columns[index[field.name]!].add(batch.columns[i])
        }
        // Columns this batch lacks are null in its rows.
        let present = Set(batch.schema.fields.map(\.name))
        for i in columns.indices where !present.contains(columns[i].name) { columns[i].addMissing(batch.rowCount) }
        rows += batch.rowCount
    }
}
