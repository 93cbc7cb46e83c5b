import Foundation
import Logging
import SluiceConfig
import SluiceConnectors
import SluiceCore

/// Options of one `sluice run`.
public struct RunOptions: Sendable {
    public var fullRefresh = false
    public var dryRun = false
    /// Pipelines run at the same time when the DAG allows. Default 2.
    public var parallel = 2
    /// Batches buffered between the reading and the writing stage of a pipeline.
    public var queueDepth = 4
    /// `--follow`: streaming sources keep reading until interrupted.
    public var follow = false
    public init() {}
}

/// Runs one pipeline: plans its units, reads them on one task, writes them on another through a
/// bounded channel, and commits each unit's rows together with its position.
final class PipelineRunner: @unchecked Sendable {
    let config: PipelineConfig
    let project: ProjectConfig
    let store: StateStore
    let runID: String
    let options: RunOptions
    let cancel: CancellationFlag
    let progress: RunProgress
    let logger: Logger
    /// Reads instead of the configured source (`sluice replay`, `sluice serve`'s spool).
    var sourceOverride: (any Source)?
    var metrics: PipelineMetrics { PipelineMetrics.of(config.name, source: config.source.type) }

    init(config: PipelineConfig, project: ProjectConfig, store: StateStore, runID: String, options: RunOptions,
         cancel: CancellationFlag, progress: RunProgress, logger: Logger) {
        self.config = config
        self.project = project
        self.store = store
        self.runID = runID
        self.options = options
        self.cancel = cancel
        self.progress = progress
        var logger = logger
        logger[metadataKey: "pipeline"] = "\(config.name)"
        self.logger = logger
    }

    enum Message: Sendable {
        case begin(WorkUnit)
        case batch(RecordBatch, [Rejection], bytes: Int)
        case end(WorkUnit, [StateEntry])
        /// Commit the unit's rows so far with these positions, then go on with the same unit.
        case checkpoint(WorkUnit, [StateEntry])
        case failed(WorkUnit, SluiceError)
        /// The unit's rows so far are to be discarded; it is read again from the start.
        case retry(WorkUnit)
        /// Reading stopped on a signal: discard the open unit and stop.
        case interrupted(WorkUnit)
    }

    struct Interrupted: Error {}

    var sourceComponent: String { "source \(config.source.type)" }
    var sinkComponent: String { "sink \(config.sink.type)" }
    /// How a quarantine line names where a record came from (the spec's `file` or `url`).
    var sourceKind: String {
        switch config.source {
        case .http: "url"
        case .postgres: "table"
        case .files: "file"
        case .webhook: "path"
        }
    }

    func run() async -> PipelineRunRecord {
        var record = PipelineRunRecord(runID: runID, pipeline: config.name)
        let started = Date()
        var errorType: String?
        do {
            try await execute(&record)
        } catch {
            let e = SluiceError.wrap(error, kind: .internal, pipeline: config.name)
            record.status = cancel.isCancelled ? .interrupted : .failed
            record.error = project.masker.mask(e.description)
            errorType = "\(e.kind)"
        }
        if record.status == .succeeded, !record.failedUnits.isEmpty {
            record.status = .failed
            record.finishedWithFailedUnits = true
            record.error = "\(record.failedUnits.count) of \(record.failedUnits.count + record.unitsDone) units failed; "
                + "the others were committed and the next run retries only the failed ones. First: \(record.failedUnits[0].unit): \(record.failedUnits[0].error)"
        }
        record.durationSeconds = Date().timeIntervalSince(started)
        if !options.dryRun { metrics.finished(record, errorType: errorType ?? (record.failedUnits.isEmpty ? nil : "unit")) }
        progress.finish(config.name)
        if !options.dryRun { try? store.record(record) }
        return record
    }

    static func makeSink(_ config: PipelineConfig, fullRefresh: Bool) throws -> any Sink {
        // A full refresh of an append table rebuilds it, like a first run would have.
        switch config.sink {
        case .sqlite(var c):
            if fullRefresh, c.mode == .append { c.mode = .replace }
            return SQLiteSink(config: c)
        case .files(let c):
            return FilesSink(config: c)
        case .postgres(var c):
            if fullRefresh, c.mode == .append { c.mode = .replace }
            return try PostgresSink(config: c, schema: config.schema)
        }
    }

    /// `parents`: for a `for_each` source, the upstream records it fans out over.
    static func makeSource(_ config: PipelineConfig, parents: [[String: Value]] = []) throws -> any Source {
        switch config.source {
        case .files(let c): FilesSource(config: c, schema: config.schema)
        case .postgres(let c) where c.mode == .cdc: try PostgresChangeSource(config: c)
        case .postgres(let c): try PostgresSource(config: c, schema: config.schema)
        case .http(let c): HTTPSource(config: c, schema: config.schema, retry: config.retry, parents: parents)
        case .webhook(let c): SpoolSource(config: c, schema: config.schema)
        }
    }

    /// Whether this run rebuilds the table (so saved positions do not apply).
    private var replaces: Bool {
        switch config.sink {
        case .sqlite(let c): c.mode == .replace || (options.fullRefresh && c.mode == .append)
        case .postgres(let c): c.mode == .replace || (options.fullRefresh && c.mode == .append)
        case .files: false
        }
    }

    private func execute(_ record: inout PipelineRunRecord) async throws {
        var context = RunContext(pipeline: config.name, runID: runID, fullRefresh: options.fullRefresh,
                                 baseDirectory: project.baseDirectory, batchRows: config.batchRows, batchBytes: config.batchBytes)
        context.startedAt = record.startedAt
        context.follow = options.follow
        context.dryRun = options.dryRun
        var parents: [[String: Value]] = []
        if sourceOverride == nil, case .http(let h) = config.source, let each = h.forEach {
            do {
                parents = try await ParentRecords.load(each, for: config.name, project: project)
            } catch where options.dryRun {
                // A dry run before the parents were ever loaded plans nothing rather than failing.
                logger.info("Dry run: no parent records yet.", metadata: ["from": "\(each.pipeline)"])
            }
            logger.info("Fanning out.", metadata: ["parents": "\(parents.count)", "from": "\(each.pipeline)", "concurrency": "\(each.concurrency)"])
        }
        let source = try sourceOverride ?? Self.makeSource(config, parents: parents)
        do {
            try await execute(source, context: context, record: &record)
            await source.close()
        } catch {
            await source.close()
            throw error
        }
    }

    private func execute(_ source: any Source, context: RunContext, record: inout PipelineRunRecord) async throws {
        let sink = try Self.makeSink(config, fullRefresh: options.fullRefresh)

        if options.dryRun {
            let state = options.fullRefresh || replaces ? [:] : try await Self.savedState(config, sink: sink, store: store, context: context)
            let units = try await source.plan(state: state, context: context)
            record.unitsDone = units.count
            record.error = nil
            logger.info("Dry run: \(units.count) unit(s) would be read.", metadata: ["units": "\(units.prefix(20).map(\.location))"])
            return
        }

        try await sink.open(context: context)
        do {
            try await write(units: source, sink: sink, context: context, record: &record)
            await sink.close()
        } catch {
            await sink.close()
            throw error
        }
    }

    private func write(units source: any Source, sink: any Sink, context: RunContext, record: inout PipelineRunRecord) async throws {
        if options.fullRefresh {
            try await sink.clearState(context: context, keys: nil)
            try store.clearState(pipeline: config.name)
        }
        var state = try store.loadState(pipeline: config.name)
        if sink.storesStateTransactionally { state.merge(try await sink.loadState(context: context)) { _, b in b } }
        if replaces { state = [:] }
        let round = try resumeRound(of: source, state: &state)
        var units = try await source.plan(state: state, context: context)
        if let round, !round.committed.isEmpty {
            let all = units.count
            units.removeAll { round.committed.contains($0.id) }
            logger.info("Resuming the unfinished run: units it committed are not read again.",
                        metadata: ["round": "\(round.id)", "skipped": "\(all - units.count)", "remaining": "\(units.count)"])
        }
        let totalBytes = units.reduce(Int64(0)) { $0 + ($1.sizeBytes ?? 0) }
        progress.start(config.name, units: units.count, totalBytes: totalBytes)
        logger.info("Starting.", metadata: ["units": "\(units.count)", "bytes": "\(totalBytes)"])
        if units.isEmpty, state.isEmpty, case .files(let f) = config.source {
            logger.warning("No input: no file matches the source path.", metadata: ["path": "\(f.path)"])
        }

        // A run-level rule that can fail the run must see all of it before anything lands.
        let wholeRun = units.count > 1 && config.quality.contains { $0.isRunLevel && $0.severity == .error } ? Self.wholeRunUnit(units) : nil
        if wholeRun != nil { logger.info("Run-level quality rules: the \(units.count) units commit together at the end.") }
        let channel = BoundedChannel<Message>(capacity: options.queueDepth)
        let quality = QualityChecker(rules: config.quality)
        for (index, rule) in config.quality.enumerated() {
            guard case .unique(let fields, againstSink: true) = rule.check, !replaces else { continue }
            let keys = try await SinkTable.distinct(fields, in: config.sink, project: project) ?? []
            quality.seed(rule: index, keys: keys)
            logger.info("unique: keys already in the sink count as seen.", metadata: ["keys": "\(keys.count)"])
        }
        let producer = Task { [units] in
            if let wholeRun {
                await self.produce(units, asOne: wholeRun, source: source, context: context, quality: quality, channel: channel)
            } else {
                await self.produce(units: units, source: source, context: context, quality: quality, channel: channel)
            }
            await channel.close()   // the writer drains what is queued, then sees the end
        }
        let history = config.quality.contains { if case .rowCount = $0.check { true } else { false } }
            ? try store.runs(pipeline: config.name, limit: 50).filter { $0.status == .succeeded }.map(\.recordsWritten) : []
        let registered = try store.schemaVersions(pipeline: config.name).last.map { ($0.version, $0.schema) }
        var writer = UnitWriter(runner: self, source: source, sink: sink, context: context, round: round?.id, quality: quality,
                                lastUnit: wholeRun?.id ?? units.last?.id, history: history, registered: registered)
        do {
            while let message = await channel.receive() {
                guard try await writer.handle(message, record: &record) else { break }
            }
        } catch {
            await channel.close()
            await producer.value
            throw error
        }
        // Closing tells a producer still sending that nobody reads any more.
        await channel.close()
        await producer.value
        try writer.quarantine.close()
        (record.quality, record.qualityScore) = writer.quality.report(failed: writer.fatal != nil || !record.failedUnits.isEmpty)
        if record.recordsRejected > 0, writer.quarantineUsed { record.quarantineFile = writer.quarantine.path }
        if cancel.isCancelled {
            record.status = .interrupted
            record.error = "interrupted; committed units are kept and the next run resumes with the rest"
            return
        }
        if let fatal = writer.fatal { throw fatal }
        try await sink.finish(context: context)
        if let round, record.failedUnits.isEmpty { try await closeRound(round, units: units, sink: sink, context: context) }
        logger.info("Finished.", metadata: ["read": "\(record.recordsRead)", "written": "\(record.recordsWritten)",
                                             "rejected": "\(record.recordsRejected)"])
    }

    static let roundKey = "round"
    static let donePrefix = "done:"

    /// A source whose units repeat every run (`Source.unitsRepeatEveryRun`) works in rounds: a
    /// round starts with a run and lasts until a run has committed every unit. Each unit's commit
    /// records the round (`done:<unit>`, with the unit's rows), so a run after a failed, crashed
    /// or interrupted one skips what its round already committed. The round's own marker lives
    /// in the state store. Both are hidden from the source's plan.
    private func resumeRound(of source: any Source, state: inout [String: String]) throws -> (id: String, committed: Set<String>)? {
        guard source.unitsRepeatEveryRun else { return nil }
        let open = state[Self.roundKey]
        var committed = Set<String>()
        for (key, value) in state where key.hasPrefix(Self.donePrefix) && value == open {
            committed.insert(String(key.dropFirst(Self.donePrefix.count)))
        }
        state = state.filter { !$0.key.hasPrefix(Self.donePrefix) && $0.key != Self.roundKey }
        if let open { return (open, committed) }
        try store.saveState(pipeline: config.name, entries: [StateEntry(key: Self.roundKey, value: runID)])
        return (runID, [])
    }

    /// Every unit of the round is committed: the next run starts a new one.
    private func closeRound(_ round: (id: String, committed: Set<String>), units: [WorkUnit], sink: any Sink, context: RunContext) async throws {
        let keys = (round.committed.map { $0 } + units.map(\.id)).map { Self.donePrefix + $0 }
        if sink.storesStateTransactionally { try await sink.clearState(context: context, keys: keys) }
        try store.clearState(pipeline: config.name, keys: keys + [Self.roundKey])
    }

    /// The positions a run would start from, read without creating anything (a dry run, `schema diff`).
    static func savedState(_ config: PipelineConfig, sink: any Sink, store: StateStore, context: RunContext) async throws -> [String: String] {
        try store.loadState(pipeline: config.name).merging(try await sinkStateIfPresent(config, sink, context), uniquingKeysWith: { _, b in b })
    }

    private static func sinkStateIfPresent(_ config: PipelineConfig, _ sink: any Sink, _ context: RunContext) async throws -> [String: String] {
        // Only SQL sinks hold state, and a dry run must not create a SQLite database.
        switch config.sink {
        case .sqlite(let c) where FileManager.default.fileExists(atPath: context.resolve(c.path)): break
        case .postgres: break
        default: return [:]
        }
        try await sink.open(context: context)
        do {
            let state = try await sink.loadState(context: context)
            await sink.close()
            return state
        } catch {
            await sink.close()
            throw error
        }
    }

    /// The reading stage: units in order, each batch through the transforms, into the channel.
    private func produce(units: [WorkUnit], source: any Source, context: RunContext, quality: QualityChecker,
                         channel: BoundedChannel<Message>) async {
        let transforms = Transforms.make(config.transforms)
        if source.unitConcurrency > 1, units.count > 1 {
            await produceConcurrently(units: units, source: source, context: context, transforms: transforms, quality: quality, channel: channel)
            return
        }
        for unit in units {
            if cancel.isCancelled { break }
            guard await read(unit, source: source, context: context, transforms: transforms, quality: quality, into: channel) else { return }
        }
    }

    /// A batch through the transforms, then the quality rules (counted under `unit`).
    static func process(_ batch: RecordBatch, _ rejected: [Rejection], transforms: [any Transform], quality: QualityChecker?,
                        unit: String, context: RunContext) throws -> (RecordBatch, [Rejection]) {
        var (batch, rejected) = (batch, rejected)
        for t in transforms {
            let (out, r) = try t.apply(batch, context: context)
            batch = out
            rejected += r
        }
        if let quality, !quality.isEmpty, batch.rowCount > 0 {
            let (kept, r) = try quality.check(batch, unit: unit, context: context)
            batch = kept
            rejected += r
        }
        return (batch, rejected)
    }

    /// Reads one unit into `channel`, trying it again from the start on a retryable failure, with
    /// the transforms and then the quality rules applied to each batch (the rules count under
    /// `qualityUnit`, the unit the writer commits: this one, or the whole run it is part of).
    /// Returns false when the pipeline stops (interrupted, or nobody reads the channel).
    func read(_ unit: WorkUnit, source: any Source, context: RunContext, transforms: [any Transform], quality: QualityChecker?,
              qualityUnit: String? = nil, into channel: BoundedChannel<Message>) async -> Bool {
        let checked = quality
        let qualityUnit = qualityUnit ?? unit.id
        var attempt = 1
        while true {
            guard await channel.send(.begin(unit)) else { return false }
            var unitContext = context
            unitContext.unit = unit.location
            do {
                let entries = try await source.read(unit, context: unitContext) { sourceBatch in
                    if self.cancel.isCancelled { throw Interrupted() }
                    for notice in sourceBatch.notices { self.logger.warning("\(notice)", metadata: ["unit": "\(unit.location)"]) }
                    let (batch, rejected) = try Self.process(sourceBatch.batch, sourceBatch.rejected, transforms: transforms,
                                                             quality: checked, unit: qualityUnit, context: unitContext)
                    // A checkpoint may come without rows (a change stream that only moved on).
                    if batch.rowCount > 0 || !rejected.isEmpty || sourceBatch.checkpoint == nil && sourceBatch.notices.isEmpty {
                        guard await channel.send(.batch(batch, rejected, bytes: sourceBatch.bytesRead)) else { throw Interrupted() }
                    }
                    if let entries = sourceBatch.checkpoint {
                        guard await channel.send(.checkpoint(unit, entries)) else { throw Interrupted() }
                    }
                }
                return await channel.send(.end(unit, entries))
            } catch is Interrupted {
                await channel.send(.interrupted(unit))
                return false
            } catch {
                let e = SluiceError.wrap(error, kind: .source, pipeline: nil, component: sourceComponent)
                var located = e
                if located.location == nil { located.location = unit.location }
                if e.retryable, attempt < config.retry.attempts {
                    checked?.unitRolledBack(qualityUnit)   // read again: its checks start over
                    await channel.send(.retry(unit))
                    let delay = min(config.retry.max, config.retry.initial * pow(2, Double(attempt - 1)))
                    let wait = config.retry.jitter ? Double.random(in: 0...delay) : delay
                    logger.warning("Unit failed, retrying.", metadata: ["unit": "\(unit.location)", "attempt": "\(attempt)", "error": "\(e.message)"])
                    try? await Task.sleep(for: .seconds(wait))
                    attempt += 1
                    continue
                }
                return await channel.send(.failed(unit, located))
            }
        }
    }
}
