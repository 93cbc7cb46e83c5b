import Foundation
import Logging
import Metrics
import SluiceConfig
import SluiceConnectors
import SluiceCore

/// The writing stage of a pipeline: resolves each batch's schema against the sink's (evolution
/// policy), writes rows, routes rejected records, and commits or rolls back each unit.
struct UnitWriter {
    let runner: PipelineRunner
    let source: any Source
    let sink: any Sink
    let context: RunContext
    let quarantine: QuarantineWriter
    private(set) var quarantineUsed = false
    /// A failure that ends the pipeline (as opposed to one unit).
    private(set) var fatal: SluiceError?

    private var sinkSchema: Schema?
    private var unitOpen = false
    private var unitBroken = false
    private var unitRead = 0
    private var unitWritten = 0
    private var unitRejected = 0
    private var unitBytes = 0
    private var totalRead = 0
    private var totalRejected = 0

    /// The round of a source whose units repeat (see `PipelineRunner.resumeRound`): recorded
    /// with each unit's commit.
    let round: String?

    /// The pipeline's quality rules; run-level ones are decided before `lastUnit` commits, against
    /// `history` (records written by the last successful runs, newest first).
    let quality: QualityChecker
    let lastUnit: String?
    let history: [Int]

    /// The table schema as the schema history last recorded it: what `schema.compatibility`
    /// judges changes against, and what a commit that changes it records as the next version.
    private var recorded: Schema?
    private var recordedVersion = 0

    init(runner: PipelineRunner, source: any Source, sink: any Sink, context: RunContext, round: String? = nil,
         quality: QualityChecker, lastUnit: String? = nil, history: [Int] = [], registered: (version: Int, schema: Schema)? = nil) {
        self.runner = runner
        recorded = registered?.schema
        recordedVersion = registered?.version ?? 0
        self.round = round
        self.quality = quality
        self.lastUnit = lastUnit
        self.history = history
        self.source = source
        self.sink = sink
        self.context = context
        self.quarantine = QuarantineWriter(template: runner.config.onError.quarantinePath, context: context)
    }

    private var config: PipelineConfig { runner.config }
    private var metrics: PipelineMetrics { runner.metrics }

    /// Handles one message; returns false when the pipeline must stop.
    mutating func handle(_ message: PipelineRunner.Message, record: inout PipelineRunRecord) async throws -> Bool {
        switch message {
        case .begin(let unit):
            unitRead = 0; unitWritten = 0; unitRejected = 0; unitBytes = 0
            unitBroken = false
            openUnit = unit
            do {
                try await sink.begin(unit)
                unitOpen = true
            } catch {
                return await fail(unit, error, record: &record)
            }
        case .batch(let batch, let rejected, let bytes):
            guard unitOpen, !unitBroken, let unit = openUnit else { return true }
            unitBytes += bytes
            unitRead += batch.rowCount + rejected.count
            runner.progress.add(config.name, records: batch.rowCount + rejected.count, bytes: bytes)
            do {
                let started = ContinuousClock.now
                let (conformed, schemaRejected) = try await conform(batch, unit: unit)
                let sinkRejected = try await sink.write(conformed)
                metrics.writeDuration.record(duration: ContinuousClock.now - started)
                metrics.batchSize.record(batch.rowCount)
                unitWritten += conformed.rowCount - sinkRejected.count
                try reject(rejected + schemaRejected + sinkRejected, unit: unit)
            } catch {
                return await fail(unit, error, record: &record)
            }
        case .end(let unit, let entries), .checkpoint(let unit, let entries):
            guard unitOpen, !unitBroken else { return fatal == nil }
            let isFinal = if case .end = message { true } else { false }
            do {
                try quarantine.sync()
                if let maxRatio = config.onError.maxRatio {
                    let read = totalRead + unitRead, rejected = totalRejected + unitRejected
                    if read > 0, Double(rejected) / Double(read) > maxRatio {
                        var e = SluiceError(.source, String(format: "%d of %d records rejected (%.1f%%), more than on_error.max_ratio %.1f%%",
                                                            rejected, read, 100 * Double(rejected) / Double(read), 100 * maxRatio),
                                            location: unit.location, fix: "see the quarantine file for the reasons")
                        e.code = Self.maxRatioExceeded
                        throw e
                    }
                }
                if isFinal, unit.id == lastUnit, !quality.isEmpty {
                    let failures = quality.runLevelFailures(unit: unit.id, history: history, now: context.startedAt)
                    if !failures.isEmpty {
                        var e = SluiceError(.source, "quality: \(failures.joined(separator: "; "))", location: unit.location,
                                            fix: "its records were not committed; fix the data, or set the rule's severity: warn")
                        e.code = Self.qualityFailed
                        throw e
                    }
                }
                var committed = entries
                if isFinal, let round { committed.append(StateEntry(key: PipelineRunner.donePrefix + unit.id, value: round)) }
                let started = ContinuousClock.now
                try await sink.commit(unit, state: committed)
                metrics.commitDuration.record(duration: ContinuousClock.now - started)
                unitOpen = false
                quality.unitCommitted(unit.id)
                try recordSchemaVersion()
                if !sink.storesStateTransactionally { try runner.store.saveState(pipeline: config.name, entries: committed) }
                await source.acknowledge(entries)
            } catch {
                return await fail(unit, error, record: &record)
            }
            metrics.read.increment(by: unitRead)
            metrics.written.increment(by: unitWritten)
            metrics.rejected.increment(by: unitRejected)
            totalRead += unitRead
            totalRejected += unitRejected
            record.recordsRead += unitRead
            record.recordsWritten += unitWritten
            record.recordsRejected += unitRejected
            record.bytesRead += unitBytes
            if isFinal {
                record.unitsDone += 1
                runner.progress.unitDone(config.name)
                runner.logger.debug("Unit committed.", metadata: ["unit": "\(unit.location)", "rows": "\(unitWritten)"])
            } else {
                // A checkpoint within the unit: what came before is durable; the unit goes on.
                runner.logger.debug("Checkpoint committed.", metadata: ["unit": "\(unit.location)", "rows": "\(unitWritten)"])
                unitRead = 0; unitWritten = 0; unitRejected = 0; unitBytes = 0
                // The next step starts where this one ended.
                var step = unit
                step.start = entries.map { "\($0.key)=\($0.value)" }.joined(separator: "\n")
                do {
                    try await sink.begin(step)
                    unitOpen = true
                } catch {
                    return await fail(unit, error, record: &record)
                }
            }
        case .retry(let unit), .interrupted(let unit):
            await rollback(unit)
            if case .interrupted = message { return false }
        case .failed(let unit, let error):
            // A unit the writer already failed (say, on a sink error) is recorded once.
            if unitBroken, openUnit == unit { return fatal == nil }
            return await fail(unit, error, record: &record)
        }
        return true
    }

    private var openUnit: WorkUnit?

    /// Refuses a change the pipeline's `schema.compatibility` does not allow (the unit fails, as under freeze).
    private func checkCompatibility(from old: Schema, to new: Schema, unit: WorkUnit) throws {
        let level = config.schema.compatibility
        guard level != .none else { return }
        let problems = SchemaChange(from: old, to: new).violations(of: level.rawValue)
        guard !problems.isEmpty else { return }
        throw SluiceError(.schema, "the change to the table's schema (version \(recordedVersion)) is not \(level.rawValue)-compatible: \(problems.joined(separator: "; "))",
                          location: unit.location, fix: "declare the column under schema.columns, or set schema.compatibility to a level that allows it")
    }

    /// After a commit: the table's schema, if it changed, becomes the next version in the history.
    private mutating func recordSchemaVersion() throws {
        guard let current = sinkSchema, context.dryRun == false else { return }
        let schema = recorded.map { $0.merged(with: current) } ?? current
        guard schema != recorded else { return }
        recordedVersion = try runner.store.recordSchema(pipeline: config.name, schema, runID: context.runID)
        recorded = schema
    }
    static let maxRatioExceeded = "max_ratio"
    static let qualityFailed = "quality"

    /// Rolls the unit back and records it as failed. Returns false if the pipeline must stop.
    private mutating func fail(_ unit: WorkUnit, _ error: any Error, record: inout PipelineRunRecord) async -> Bool {
        var e = SluiceError.wrap(error, kind: .sink, pipeline: nil, component: nil)
        if e.component == nil { e.component = e.kind == .sink ? runner.sinkComponent : runner.sourceComponent }
        await rollback(unit)
        // A unit read again forgets its checks on the reading side; a failed one is not read again.
        quality.unitRolledBack(unit.id)
        unitBroken = true
        await source.writeFailed(unit)
        record.recordsRead += unitRead
        let text = runner.project.masker.mask(e.description)
        record.failedUnits.append(FailedUnit(unit: unit.location, error: text))
        runner.logger.error("Unit failed; its rows were rolled back.", metadata: ["unit": "\(unit.location)", "error": "\(text)"])
        // A run-level limit or an on_error: fail stops the whole pipeline.
        let stopsPipeline = config.onError.action == .fail || e.code == Self.maxRatioExceeded || e.code == Self.qualityFailed
        if stopsPipeline { fatal = SluiceError(e.kind, e.message, pipeline: config.name, component: e.component, location: e.location, fix: e.fix) }
        return !stopsPipeline
    }

    private mutating func rollback(_ unit: WorkUnit) async {
        if unitOpen { try? await sink.rollback(unit) }
        unitOpen = false
        // Columns added inside the rolled-back transaction are gone again: resolve anew.
        sinkSchema = nil
    }

    private mutating func reject(_ rejected: [Rejection], unit: WorkUnit) throws {
        guard !rejected.isEmpty else { return }
        unitRejected += rejected.count
        switch config.onError.action {
        case .fail:
            let r = rejected[0]
            throw SluiceError(.source, "record rejected (\(r.reason.rawValue)\(r.field.map { ", field \($0)" } ?? "")): \(r.message)",
                              location: "\(unit.location)\(r.origin.map { " line \($0)" } ?? "")",
                              fix: "fix the input, or set on_error.action: quarantine to set such records aside")
        case .skip:
            return
        case .quarantine:
            quarantineUsed = true
            for r in rejected { quarantine.add(r, unit: unit, sourceKind: runner.sourceKind) }
        }
    }

    /// Applies the evolution policy to a batch whose columns differ from the sink's.
    private mutating func conform(_ batch: RecordBatch, unit: WorkUnit) async throws -> (RecordBatch, [Rejection]) {
        guard let known = sinkSchema else {
            var initial = batch.schema
            // Under freeze and the discard policies, a destination that exists already is the
            // baseline: columns it lacks are new, even in the first batch of a run.
            if config.schema.evolution != .evolve {
                let existing = Set(try await sink.destinationColumns())
                if !existing.isEmpty {
                    let allowed = existing.union(config.schema.declared.names).union([ChangeRecords.operationColumn])
                    initial = Schema(batch.schema.fields.filter { allowed.contains($0.name) })
                }
            }
            for f in config.schema.declared.fields where initial[f.name] == nil { initial.append(f) }
            // Against what the source presents now, so a recorded column it no longer has counts
            // as removed (the table keeps it; later batches only ever add to the table).
            if let recorded { try checkCompatibility(from: recorded, to: initial, unit: unit) }
            sinkSchema = initial
            try await sink.prepare(schema: initial, context: context)
            if initial.count == batch.schema.count { return (batch, []) }
            return try await conform(batch, unit: unit)
        }
        let added = batch.schema.fields.filter { known[$0.name] == nil }
        let widened = batch.schema.fields.filter { f in known[f.name].map { !f.type.fits(in: $0.type) } ?? false }
        if added.isEmpty, widened.isEmpty { return (batch, []) }
        switch config.schema.evolution {
        case .evolve:
            let merged = known.merged(with: batch.schema)
            try checkCompatibility(from: recorded.map { $0.merged(with: known) } ?? known, to: (recorded ?? Schema()).merged(with: merged), unit: unit)
            sinkSchema = merged
            try await sink.prepare(schema: merged, context: context)
            return (batch, [])
        case .freeze:
            let what = added.map { "new column \($0.name) (\($0.type))" } + widened.map { "column \($0.name) changed to \($0.type)" }
            throw SluiceError(.schema, "the data has \(what.joined(separator: ", ")) but schema.evolution is freeze",
                              location: unit.location, fix: "declare the change under schema.columns, or set schema.evolution: evolve")
        case .discard_column, .discard_row:
            // A column whose values arrived as another type (text in an int64 column) is converted
            // back; the values that do not convert are what the policy discards.
            var out = batch
            var unconvertible: [Int: (Field, Value)] = [:]   // row → the first offending value
            for f in widened {
                let target = known[f.name]!
                var failures: [Int] = []
                let converted = batch[f.name]!.converted(to: target.type, failures: &failures)
                for row in failures where unconvertible[row] == nil { unconvertible[row] = (f, batch[f.name]!.value(at: row)) }
                out.setColumn(target, converted)
            }
            for f in added { out.removeColumn(f.name) }
            guard config.schema.evolution == .discard_row else { return (out, []) }
            var rejected: [Rejection] = []
            var keep: [Int] = []
            for row in 0..<batch.rowCount {
                if let (f, value) = unconvertible[row] {
                    rejected.append(Rejection(reason: .schema, field: f.name,
                                              message: "\(f.name) '\(value.text)' is not \(known[f.name]!.type) (evolution: discard_row)",
                                              origin: batch.origins[row], record: batch.row(row).fields))
                } else if let f = added.first(where: { !batch[$0.name]!.isNull(row) }) {
                    rejected.append(Rejection(reason: .schema, field: f.name, message: "column \(f.name) is not in the schema (evolution: discard_row)",
                                              origin: batch.origins[row], record: batch.row(row).fields))
                } else {
                    keep.append(row)
                }
            }
            return (out.taking(keep), rejected)
        }
    }
}
