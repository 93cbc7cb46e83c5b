/// What every component sees of the run it is part of.
public struct RunContext: Sendable {
    public var pipeline: String
    public var runID: String
    /// Run start, µs since epoch: `now()` in `add_fields` gives this one value for the whole run.
    public var startedAt: Int64
    /// `--full-refresh`: ignore saved positions (and, for `replace`, rebuild from scratch).
    public var fullRefresh: Bool
    /// Directory of the project file; relative paths in the configuration resolve against it.
    public var baseDirectory: String
    /// Rows (and bytes) per batch emitted by sources.
    public var batchRows: Int
    public var batchBytes: Int
    /// The unit being processed (`source_file()`), set by the runtime per unit.
    public var unit: String?
    /// `--follow`: a streaming source keeps reading (until interrupted) instead of stopping once
    /// it has caught up.
    public var follow = false
    /// `--dry-run`: plan only; a source must not create anything (a replication slot, say).
    public var dryRun = false

    public init(pipeline: String, runID: String, startedAt: Int64 = Temporal.nowMicros(), fullRefresh: Bool = false,
                baseDirectory: String = ".", batchRows: Int = 16_384, batchBytes: Int = 4 << 20) {
        self.pipeline = pipeline
        self.runID = runID
        self.startedAt = startedAt
        self.fullRefresh = fullRefresh
        self.baseDirectory = baseDirectory
        self.batchRows = batchRows
        self.batchBytes = batchBytes
    }

    /// Resolves a configured path against the project directory.
    public func resolve(_ path: String) -> String {
        path.hasPrefix("/") || baseDirectory.isEmpty || baseDirectory == "." ? path : baseDirectory + "/" + path
    }
}

/// One saved position entry: a key within the pipeline (`file:data/a.csv`, `cursor`) and its value (JSON).
public struct StateEntry: Sendable, Hashable, Codable {
    public var key: String
    public var value: String
    public init(key: String, value: String) { self.key = key; self.value = value }
}

/// A unit of work: one file, one API parent, one table. A unit is committed whole: its rows and its
/// state entries land together, or (after a failure or crash) it is processed again from the start.
public struct WorkUnit: Sendable, Hashable {
    /// Stable identity across runs (e.g. the file path relative to the project).
    public var id: String
    /// Where it reads from, for messages (`data/orders.csv`).
    public var location: String
    /// Bytes to read, when known (progress and ETA).
    public var sizeBytes: Int64?
    /// The position this unit (or this step of a unit that commits in steps) starts from, as text;
    /// nil for a unit read from its beginning every time. Sinks that cannot store positions
    /// transactionally name a step's output after it, so a step done again replaces its output
    /// while the steps before it stay.
    public var start: String?

    public init(id: String, location: String, sizeBytes: Int64? = nil, start: String? = nil) {
        self.id = id
        self.location = location
        self.sizeBytes = sizeBytes
        self.start = start
    }
}

/// Why a record was rejected, as written to quarantine.
public enum RejectionReason: String, Sendable, Codable { case quality, parse, schema, sink }

/// A record that did not make it into the sink, and why.
public struct Rejection: Sendable {
    public var reason: RejectionReason
    public var rule: String?
    public var field: String?
    public var message: String
    /// Line (or record index) in the source unit.
    public var origin: Int?
    /// The record as read, when it could be parsed into fields …
    public var record: [(String, Value)]?
    /// … or the raw text when it could not.
    public var raw: String?

    public init(reason: RejectionReason, rule: String? = nil, field: String? = nil, message: String,
                origin: Int? = nil, record: [(String, Value)]? = nil, raw: String? = nil) {
        self.reason = reason
        self.rule = rule
        self.field = field
        self.message = message
        self.origin = origin
        self.record = record
        self.raw = raw
    }
}

/// A batch as it leaves a source: rows plus the rows it could not read.
public struct SourceBatch: Sendable {
    public var batch: RecordBatch
    public var rejected: [Rejection]
    /// Input bytes consumed for this batch (progress, `bytes_read`).
    public var bytesRead: Int
    /// Positions to commit with the unit's rows up to and including this batch. A source that
    /// sets them (a database read page by page) resumes from the last committed checkpoint, not
    /// from the start of the unit.
    public var checkpoint: [StateEntry]?
    /// Things the user should know that are not errors (a source table changed its columns),
    /// logged as warnings by the runtime.
    public var notices: [String] = []

    public init(batch: RecordBatch, rejected: [Rejection] = [], bytesRead: Int = 0, checkpoint: [StateEntry]? = nil) {
        self.batch = batch
        self.rejected = rejected
        self.bytesRead = bytesRead
        self.checkpoint = checkpoint
    }
}

/// Produces records. The runtime asks for the units still to do, then reads each one.
public protocol Source: Sendable {
    /// The units to process this run, given the saved state (empty on first run or full refresh).
    func plan(state: [String: String], context: RunContext) async throws -> [WorkUnit]
    /// Reads one unit, calling `emit` for each batch. `emit` suspends when downstream is full
    /// (back-pressure). Returns the state entries to commit with the unit's rows. Throwing fails
    /// the unit; rows already emitted for it are rolled back.
    func read(_ unit: WorkUnit, context: RunContext, emit: (SourceBatch) async throws -> Void) async throws -> [StateEntry]
    /// Called after the sink committed these state entries (a checkpoint or a unit's end), from
    /// the writing task. A source that must release data upstream (advance a replication slot,
    /// commit an offset) does it from here, never before.
    func acknowledge(_ entries: [StateEntry]) async
    /// The schema the source's records will have, when it is known without reading them (a
    /// database table's catalog); nil otherwise. `sluice run --plan` compares it with the sink.
    func describe(context: RunContext) async throws -> Schema?
    /// Called when the writing stage failed `unit` (its rows are rolled back): a source that
    /// would go on reading it, such as a change stream, can stop.
    func writeFailed(_ unit: WorkUnit) async
    /// How many units may be read at the same time (an API's parents). The sink still takes
    /// them one by one, in plan order. Default 1.
    var unitConcurrency: Int { get }
    /// Whether every run plans the same units again (one per API parent record) rather than only
    /// new ones. For such a source the runtime remembers which units a run committed: when a run
    /// does not finish, the next one skips them and does only the failed and unfinished units.
    var unitsRepeatEveryRun: Bool { get }
    /// Releases what the source holds (connections), after the pipeline's last unit.
    func close() async
}

extension Source {
    public func acknowledge(_ entries: [StateEntry]) async {}
    public func describe(context: RunContext) async throws -> Schema? { nil }
    public func writeFailed(_ unit: WorkUnit) async {}
    public var unitConcurrency: Int { 1 }
    public var unitsRepeatEveryRun: Bool { false }
    public func close() async {}
}

/// Changes batches. Stateful transforms (deduplicate) are reference types created per run.
public protocol Transform: Sendable {
    func apply(_ batch: RecordBatch, context: RunContext) throws -> (RecordBatch, [Rejection])
}

/// How a sink writes: per the contract's `mode`.
public enum WriteMode: String, Sendable, Codable, CaseIterable {
    case append, merge, replace, replicate
}

/// Receives records. One sink instance serves one pipeline run, from one task at a time.
///
/// Per unit the runtime calls `begin`, any number of `write`s, then `commit` (rows and the unit's
/// state entries durable together) or `rollback`. `finish` ends the run (e.g. the atomic swap of
/// `replace`). Sinks that keep state transactionally (SQL databases) return it from `loadState`;
/// for the others the runtime keeps it in the state store after `commit` returned.
public protocol Sink: AnyObject, Sendable {
    var storesStateTransactionally: Bool { get }
    func open(context: RunContext) async throws
    func loadState(context: RunContext) async throws -> [String: String]
    func clearState(context: RunContext, keys: [String]?) async throws
    /// Makes the destination accept `schema` (create, or add columns); called before the first write
    /// and whenever the resolved schema grows.
    func prepare(schema: Schema, context: RunContext) async throws
    func begin(_ unit: WorkUnit) async throws
    /// Writes rows within the open unit. Rows the destination refuses on their own (a constraint
    /// violation) come back as rejections; anything else that fails throws.
    func write(_ batch: RecordBatch) async throws -> [Rejection]
    func commit(_ unit: WorkUnit, state: [StateEntry]) async throws
    func rollback(_ unit: WorkUnit) async throws
    func finish(context: RunContext) async throws
    func close() async
    /// The columns the destination already has (empty when it does not exist yet or has no fixed
    /// columns): what `schema.evolution: freeze` and the discard policies compare new data with.
    func destinationColumns() async throws -> [String]
    /// The DDL `prepare(schema:)` would run for `schema`, without running it (`sluice run --plan`).
    func plannedStatements(for schema: Schema, context: RunContext) async throws -> [String]
}

extension Sink {
    public func destinationColumns() async throws -> [String] { [] }
    public func plannedStatements(for schema: Schema, context: RunContext) async throws -> [String] { [] }
}

/// Change records as change-data-capture sources hand them to a sink in `mode: replicate`: the
/// table's own columns plus one column with the operation.
public enum ChangeRecords {
    /// The operation of each row: `c` insert, `u` update, `r` snapshot read (the row is upserted),
    /// `d` delete (the row carries the old values, at least the key), `t` truncate (the table's
    /// rows are removed; the row's values are null).
    public static let operationColumn = "__op"
}
