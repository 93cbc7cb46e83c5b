import Foundation
import PostgresNIO
import SluiceConfig
import SluiceCore
import SluiceFormats

/// `type: postgres, mode: cdc`: the changes of tables from a logical replication slot.
///
/// - **Decoding**: wal2json, format-version 2, read with `pg_logical_slot_peek_changes` over a
///   normal connection (postgres-nio cannot open a replication connection). wal2json rather than
///   pgoutput because its output is self-describing text (schema, table, column names and types,
///   key) that needs no relation cache across calls, and one row per change keeps a huge
///   transaction streaming instead of arriving as one value.
/// - **Units**: first one snapshot unit per table not yet read, then one stream unit. The stream
///   commits a checkpoint (the sink's rows plus `cdc:lsn`, the end of the last whole source
///   transaction) every `batch.rows` changes and whenever it catches up; a source transaction is
///   never split across two sink transactions.
/// - **Slot**: advanced (`pg_replication_slot_advance`) only to positions the sink has committed
///   (`acknowledge`), so a crash can only make Sluice read changes again, which it skips by the
///   saved position; it never loses one.
/// - **Snapshot handoff**: the slot exists before a table's snapshot is read, and the snapshot
///   records which transactions it already contains (`SnapshotCoverage`); those are skipped for
///   that table when the stream reaches them. No lock is taken and no change is applied twice.
public final class PostgresChangeSource: Source, @unchecked Sendable {
    let config: PostgresSourceConfig
    let endpoint: PostgresEndpoint
    let slot: String
    static let component = "source postgres cdc"
    static let positionKey = "cdc:lsn"
    public static let snapshotPrefix = "cdc:snapshot:"
    static let streamUnit = "stream"

    private let lock = NSLock()
    private var tables: [String: CapturedTable] = [:]
    private var coverage: [String: SnapshotCoverage] = [:]
    private var saved: LSN?
    private var acked: LSN?
    private var failed = false

    public init(config: PostgresSourceConfig) throws {
        self.config = config
        endpoint = try PostgresEndpoint(url: config.url)
        slot = config.slot ?? "sluice"
    }

    private func locked<T>(_ body: () -> T) -> T { lock.withLock(body) }

    /// wal_level and the REPLICATION attribute, each problem with its fix (`sluice doctor`).
    public static func checkServer(_ db: PostgresClient) async throws {
        try await PostgresChangeSetup.checkServer(db, component: component)
    }

    /// Replicate: the table's columns (and the operation); a change log: the envelope.
    public func describe(context: RunContext) async throws -> Schema? {
        guard config.emitsRows, let name = config.tables.first else { return ChangeBatchBuilder.envelopeSchema }
        return try await PostgresClient.using(endpoint, component: Self.component) { db in
            try await PostgresChangeSetup(db: db, config: config, slot: slot, component: Self.component).describe(name).declared
        }
    }

    // MARK: Plan

    public func plan(state: [String: String], context: RunContext) async throws -> [WorkUnit] {
        try await PostgresClient.using(endpoint, component: Self.component) { db in try await plan(db, state: state, context: context) }
    }

    private func plan(_ db: PostgresClient, state: [String: String], context: RunContext) async throws -> [WorkUnit] {
        let setup = PostgresChangeSetup(db: db, config: config, slot: slot, component: Self.component)
        try await setup.checkServer()
        var ordered: [CapturedTable] = []
        for name in config.tables { ordered.append(try await setup.describe(name)) }
        let described = Dictionary(ordered.map { ($0.qualified, $0) }, uniquingKeysWith: { a, _ in a })
        if !context.dryRun {
            if config.fullReplicaIdentity { try await setup.ensureFullReplicaIdentity(ordered) }
            try await setup.ensureSlot()
        }
        var position: LSN?
        if let text = state[Self.positionKey] {
            guard let lsn = LSN(text) else {
                throw SluiceError(.state, "the saved WAL position '\(text)' is not readable", component: Self.component,
                                  fix: "sluice state reset \(context.pipeline) to read the tables again from a new snapshot")
            }
            position = lsn
        }
        var covered: [String: SnapshotCoverage] = [:]
        var units: [WorkUnit] = []
        for table in ordered {
            if let saved = state[Self.snapshotPrefix + table.qualified] {
                covered[table.qualified] = try? JSONDecoder().decode(SnapshotCoverage.self, from: Data(saved.utf8))
            } else if config.snapshot == .initial {
                units.append(WorkUnit(id: "snapshot:" + table.qualified, location: "\(endpoint.display) \(table.qualified) (snapshot)"))
            }
        }
        units.append(WorkUnit(id: Self.streamUnit, location: "\(endpoint.display) slot \(slot)",
                              start: position.map { "\(Self.positionKey)=\($0)" } ?? ""))
        locked {
            tables = described
            coverage = covered
            saved = position
        }
        return units
    }

    // MARK: Read

    public func read(_ unit: WorkUnit, context: RunContext, emit: (SourceBatch) async throws -> Void) async throws -> [StateEntry] {
        try await PostgresClient.using(endpoint, component: Self.component) { db in
            unit.id.hasPrefix("snapshot:")
                ? try await readSnapshot(String(unit.id.dropFirst("snapshot:".count)), db: db, context: context, emit: emit)
                : try await readStream(db: db, context: context, emit: emit)
        }
    }

    /// The table's rows in one REPEATABLE READ transaction, as `r` changes; in rows mode they
    /// follow a truncate marker, so the replica is replaced, not merged.
    private func readSnapshot(_ name: String, db: PostgresClient, context: RunContext, emit: (SourceBatch) async throws -> Void) async throws -> [StateEntry] {
        guard let table = locked({ tables[name] }) else {
            throw SluiceError(.internal, "table \(name) was not described", component: Self.component)
        }
        try await db.execute("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")
        // The first statement fixes the transaction's snapshot; the WAL position is read after it.
        let snapshot = try await db.rows("SELECT pg_current_snapshot()::text").first?.first ?? nil
        let wal = try await db.rows("SELECT pg_current_wal_lsn()::text").first?.first ?? nil
        guard let snapshot, let wal, let covers = SnapshotCoverage(snapshot: snapshot, wal: wal) else {
            throw SluiceError(.source, "PostgreSQL did not report its snapshot", component: Self.component, location: endpoint.display)
        }
        let origin = ChangeOrigin(xid: 0, lsn: nil, commit: LSN(wal), commitMillis: Temporal.nowMicros() / 1000, snapshot: true)
        var builder = ChangeBatchBuilder(table: table, emitsRows: config.emitsRows, pipeline: context.pipeline, database: endpoint.database)
        if config.emitsRows { builder.addTruncate(origin: origin) }
        let select = table.columns.map(PostgresTypes.selectExpression).joined(separator: ", ")
        try await db.stream("SELECT \(select) FROM \(PostgresSQL.qualified(table.schema, table.name))") { row in
            builder.addSnapshotRow(row, origin: origin)
            if builder.count >= context.batchRows { try await emit(builder.take(nowMillis: Temporal.nowMicros() / 1000)) }
        }
        if builder.count > 0 { try await emit(builder.take(nowMillis: Temporal.nowMicros() / 1000)) }
        try await db.execute("COMMIT")
        locked { coverage[name] = covers }
        let value = String(decoding: try JSONEncoder().encode(covers), as: UTF8.self)
        return [StateEntry(key: Self.snapshotPrefix + name, value: value)]
    }

    public func acknowledge(_ entries: [StateEntry]) async {
        guard let text = entries.first(where: { $0.key == Self.positionKey })?.value, let lsn = LSN(text) else { return }
        locked { if acked.map({ lsn > $0 }) ?? true { acked = lsn } }
    }

    public func writeFailed(_ unit: WorkUnit) async {
        locked { failed = true }
    }

    /// Whether the writing stage gave up on the stream: reading on would only be thrown away.
    var writerFailed: Bool { locked { failed } }

    /// The last position the sink committed in this run.
    var acknowledged: LSN? { locked { acked } }

    /// What `plan` found: the tables, their snapshots' coverage, the saved position.
    func currentPlan() -> ([String: CapturedTable], [String: SnapshotCoverage], LSN?) {
        locked { (tables, coverage, saved) }
    }
}
