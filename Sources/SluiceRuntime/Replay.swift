import Foundation
import SluiceConfig
import SluiceConnectors
import SluiceCore

/// `sluice replay PIPELINE --run RUN_ID`: the records a run quarantined go through the pipeline's
/// schema, quality rules and sink again (not its transforms: they were quarantined after them).
/// The replay commits a marker with the rows, so replaying the same run twice loads nothing the
/// second time; records that fail again are quarantined under the replay's own run.
final class ReplaySource: Source, @unchecked Sendable {
    let originalRun: String
    let records: FilesSource
    let recordsFile: String
    /// Quarantined lines without a parsed record (a line the parser could not read).
    let unreadable: Int
    static func marker(_ run: String) -> String { "replayed:\(run)" }

    /// Extracts the `record` objects of the quarantine file into `workFile` (JSONL).
    init(quarantineFile: String, originalRun: String, workFile: String, schema: SchemaConfig) throws {
        guard FileManager.default.fileExists(atPath: quarantineFile) else {
            throw SluiceError(.config, "run \(originalRun) quarantined nothing (no \(quarantineFile))", component: "replay",
                              fix: "see `sluice runs` for the runs that rejected records")
        }
        var out = "", unreadable = 0
        let text = try String(contentsOfFile: quarantineFile, encoding: .utf8)
        for line in text.split(separator: "\n") {
            guard let object = try? JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any],
                  let record = object["record"] as? [String: Any],
                  let data = try? JSONSerialization.data(withJSONObject: record, options: [.sortedKeys]) else {
                unreadable += 1
                continue
            }
            out += String(decoding: data, as: UTF8.self) + "\n"
        }
        try FileSystem.createDirectory(forFile: workFile)
        try out.write(toFile: workFile, atomically: true, encoding: .utf8)
        self.originalRun = originalRun
        self.recordsFile = workFile
        self.unreadable = unreadable
        records = FilesSource(config: FilesSourceConfig(path: workFile, format: .jsonl, incremental: .none), schema: schema)
    }

    func plan(state: [String: String], context: RunContext) async throws -> [WorkUnit] {
        if state[Self.marker(originalRun)] != nil { return [] }
        return try await records.plan(state: [:], context: context).map {
            WorkUnit(id: "replay:\(originalRun)", location: "quarantine of run \(originalRun)", sizeBytes: $0.sizeBytes)
        }
    }

    func read(_ unit: WorkUnit, context: RunContext, emit: (SourceBatch) async throws -> Void) async throws -> [StateEntry] {
        guard let file = try await records.plan(state: [:], context: context).first else { return [] }
        _ = try await records.read(file, context: context, emit: emit)
        return [StateEntry(key: Self.marker(originalRun), value: context.runID)]
    }
}

extension ProjectRunner {
    /// Replays what run `runID` of `pipeline` quarantined.
    public func replay(pipeline name: String, run runID: String) async throws -> RunReport {
        guard let original = project.pipeline(named: name) else {
            throw SluiceError(.config, "unknown pipeline '\(name)'", component: "replay")
        }
        switch original.sink.mode {
        case .replace, .replicate:
            throw SluiceError(.config, "replay adds the records to \(name)'s sink, which is in mode \(original.sink.mode.rawValue)", component: "replay",
                              fix: "fix the data and run the pipeline again instead")
        case .append, .merge: break
        }
        let store = try openStore()
        let replayID = Self.newRunID()
        let quarantine = resolve(original.onError.quarantinePath.replacingOccurrences(of: "{pipeline}", with: name)
            .replacingOccurrences(of: "{run_id}", with: runID))
        let source = try ReplaySource(quarantineFile: quarantine, originalRun: runID,
                                      workFile: resolve(".sluice/replay/\(name)/\(runID).jsonl"), schema: original.schema)
        var config = original
        config.transforms = []
        let runner = PipelineRunner(config: config, project: project, store: store, runID: replayID, options: options,
                                    cancel: cancel, progress: progress, logger: logger)
        runner.sourceOverride = source
        if source.unreadable > 0 {
            logger.warning("Quarantined lines without a readable record are not replayed; fix the source file and run again.",
                           metadata: ["pipeline": "\(name)", "lines": "\(source.unreadable)"])
        }
        var report = RunReport(runID: replayID, pipelines: [await runner.run()])
        report.interrupted = cancel.isCancelled
        return report
    }
}
