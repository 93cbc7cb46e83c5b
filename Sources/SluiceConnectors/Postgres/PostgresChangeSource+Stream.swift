import Foundation
import PostgresNIO
import SluiceCore
import SluiceFormats

/// The stream unit: changes from the slot, whole transactions at a time.
extension PostgresChangeSource {
    /// Decoded rows asked for per call; a call returns whole transactions, so a bigger one comes
    /// whole (streamed, never held: its changes go out in batches as they arrive).
    static let changesPerCall = 50_000
    /// How long to wait for the sink to commit what was read before reading more. Past it the
    /// next call reads the same changes again and skips those already sent.
    static let acknowledgementWait = 5.0

    func readStream(db: PostgresClient, context: RunContext, emit: (SourceBatch) async throws -> Void) async throws -> [StateEntry] {
        let (tables, coverage, saved) = currentPlan()
        var reader = StreamReader(tables: tables, coverage: coverage, emitted: saved, emitsRows: config.emitsRows,
                                  pipeline: context.pipeline, database: endpoint.database, batchRows: context.batchRows)
        var advanced = saved
        var lastHeartbeat = Date.distantPast
        var lastCheckpoint = Date()
        if config.heartbeat > 0 {
            await heartbeat(db)
            lastHeartbeat = Date()
        }
        let options = ["format-version", "2", "include-xids", "1", "include-timestamp", "1", "include-lsn", "1",
                       "include-transaction", "1", "include-pk", "1", "include-type-oids", "1"]
        let optionSQL = options.map { "'\($0)'" }.joined(separator: ", ")
        let sql = "SELECT data FROM pg_logical_slot_peek_changes($1, NULL, $2::int, \(optionSQL), 'add-tables', $3)"
        let filter = tables.keys.sorted().map(Self.escapeForWal2JSON).joined(separator: ",")
        while !writerFailed {
            if let acked = acknowledged, advanced.map({ acked > $0 }) ?? true {
                try await advance(db, to: acked)
                advanced = acked
            }
            let before = reader.transactions
            try await db.stream(sql, [slot, String(Self.changesPerCall), filter]) { row in
                guard let data = row.first?.bytes else { return }
                let change = try data.withUnsafeReadableBytes { try Wal2JSONChange.parse($0) }
                if let batch = reader.add(change) { try await emit(batch) }
            }
            // Only other tables' transactions (the sink's own state writes among them, when it
            // is this database): the position moves on now and then, not after each of them,
            // which would write state, make a transaction, and never catch up.
            let idleFor = Date().timeIntervalSince(lastCheckpoint)
            if let batch = reader.checkpoint(force: context.follow && config.heartbeat > 0 && idleFor >= config.heartbeat) {
                try await emit(batch)
                lastCheckpoint = Date()
            }
            let caughtUp = reader.transactions == before
            if caughtUp {
                guard context.follow else { break }
                if config.heartbeat > 0, Date().timeIntervalSince(lastHeartbeat) >= config.heartbeat {
                    await heartbeat(db)
                    lastHeartbeat = Date()
                }
                try await Task.sleep(for: .seconds(config.pollInterval))
            }
            // Let the sink commit what was read, so the next call starts after it.
            try await waitForAcknowledgement(of: reader.checkpointed, seconds: Self.acknowledgementWait)
        }
        // The last checkpoint's commit releases the slot up to it.
        try await waitForAcknowledgement(of: reader.checkpointed, seconds: 30)
        if let acked = acknowledged, advanced.map({ acked > $0 }) ?? true { try await advance(db, to: acked) }
        return []
    }

    private func waitForAcknowledgement(of position: LSN?, seconds: Double) async throws {
        guard let position else { return }
        let deadline = Date().addingTimeInterval(seconds)
        while (acknowledged.map { $0 < position } ?? true), Date() < deadline, !writerFailed {
            try await Task.sleep(for: .milliseconds(5))
        }
    }

    /// Moves the slot to a position the sink has committed: the server may recycle WAL before it.
    func advance(_ db: PostgresClient, to position: LSN) async throws {
        // A slot already past the position (another run advanced it) stays where it is.
        try await db.stream("""
            SELECT pg_replication_slot_advance($1, $2::pg_lsn) FROM pg_replication_slots
            WHERE slot_name = $1 AND confirmed_flush_lsn < $2::pg_lsn
            """, [slot, position.description]) { _ in }
    }

    /// A tiny transactional message in the WAL: a transaction that reaches the stream even when
    /// the captured tables are idle, so the slot moves on with the server's WAL.
    private func heartbeat(_ db: PostgresClient) async {
        do {
            try await db.stream("SELECT pg_logical_emit_message(true, 'sluice_heartbeat', $1)", [slot]) { _ in }
        } catch {
            // Not fatal: without it an idle slot only moves when the captured tables change.
        }
    }

    /// wal2json's `add-tables` separates with commas and uses `.` and `*`: those are escaped.
    static func escapeForWal2JSON(_ name: String) -> String {
        let (schema, table) = PostgresSQL.split(name)
        func escape(_ s: String) -> String {
            var out = ""
            for c in s {
                if c == "," || c == "." || c == "*" || c == "\\" || c == " " { out.append("\\") }
                out.append(c)
            }
            return out
        }
        return escape(schema) + "." + escape(table)
    }
}

/// Turns wal2json rows into batches and checkpoints, transaction by transaction.
struct StreamReader {
    /// The captured tables, with the columns their changes last had.
    private(set) var tables: [String: CapturedTable]
    let coverage: [String: SnapshotCoverage]
    let emitsRows: Bool
    let pipeline: String
    let database: String
    let batchRows: Int
    /// End of the last transaction handed on (its changes are emitted or skipped).
    private(set) var emitted: LSN?
    /// The position of the last checkpoint handed on, starting from the saved one.
    private var lastCheckpoint: LSN?
    /// The last checkpoint handed on in this run: what to wait for the sink to commit.
    private(set) var checkpointed: LSN?
    /// Transactions with changes of the captured tables seen so far.
    private(set) var transactions = 0
    /// Whether the transactions since the last checkpoint changed a captured table.
    private var captured = false
    /// Past this much WAL of other tables' transactions a checkpoint moves the slot on anyway.
    static let idleAdvance: UInt64 = 8 << 20
    private var builders: [String: ChangeBatchBuilder] = [:]
    /// The table whose builder holds changes; batches go out in the order the changes came.
    private var current: String?
    private var transaction: (xid: Int64, commit: LSN?, millis: Int64, skip: Bool, changed: Bool)?
    /// The end of the last transaction not yet in a checkpoint.
    private var pending: LSN?
    private var changesSinceCheckpoint = 0

    init(tables: [String: CapturedTable], coverage: [String: SnapshotCoverage], emitted: LSN?, emitsRows: Bool,
         pipeline: String, database: String, batchRows: Int) {
        self.tables = tables
        self.coverage = coverage
        self.emitted = emitted
        lastCheckpoint = emitted
        self.emitsRows = emitsRows
        self.pipeline = pipeline
        self.database = database
        self.batchRows = batchRows
    }

    /// Takes one row; returns a batch when one is full or a checkpoint is due.
    mutating func add(_ change: Wal2JSONChange) -> SourceBatch? {
        switch change.action {
        case .begin:
            let commit = change.nextLSN.flatMap(LSN.init)
            // Already sent (a call that re-read what the sink had not committed yet, or a restart
            // before the slot moved): the whole transaction is skipped.
            let skip = commit.map { c in emitted.map { c <= $0 } ?? false } ?? false
            transaction = (change.xid, commit, Self.millis(change.timestamp), skip, false)
            return nil
        case .commit:
            defer { transaction = nil }
            guard let t = transaction, !t.skip, let commit = t.commit else { return nil }
            if t.changed {
                transactions += 1
                captured = true
            }
            emitted = commit
            pending = commit
            return changesSinceCheckpoint >= batchRows ? checkpoint(force: true) : nil
        case .insert, .update, .delete, .truncate:
            guard let t = transaction, !t.skip else { return nil }
            let name = change.schema + "." + change.table
            guard tables[name] != nil else { return nil }
            transaction?.changed = true
            if let covered = coverage[name], let commit = t.commit, covered.contains(xid: t.xid, commitEnd: commit) { return nil }
            var out: SourceBatch?
            if let current, current != name { out = flush(current) }
            if let (changed, notice) = drift(of: tables[name]!, in: change) {
                // The rows so far keep the old columns; the next batch carries the new ones, and
                // the sink's schema.evolution policy decides what happens to them.
                if out == nil { out = flush(name) }
                if out == nil { out = SourceBatch(batch: RecordBatch.empty(Schema())) }
                out!.notices.append(notice)
                tables[name] = changed
                builders[name] = nil
            }
            let table = tables[name]!
            current = name
            let origin = ChangeOrigin(xid: t.xid, lsn: change.lsn.flatMap(LSN.init), commit: t.commit, commitMillis: t.millis, snapshot: false)
            builders[name, default: ChangeBatchBuilder(table: table, emitsRows: emitsRows, pipeline: pipeline, database: database)].add(change, origin: origin)
            changesSinceCheckpoint += 1
            // A full batch inside a transaction goes out without a checkpoint: the transaction
            // stays open in the sink until its end.
            if out == nil, builders[name]!.count >= batchRows { out = flush(name) }
            return out
        case .other:
            return nil
        }
    }

    /// The rows collected so far with the position of the last whole transaction; nil when
    /// nothing is new. Progress through other tables' transactions only is handed on when
    /// `force`d or past `idleAdvance` of WAL.
    mutating func checkpoint(force: Bool = false) -> SourceBatch? {
        guard let position = pending else { return nil }
        if !captured, !force, position.value - (lastCheckpoint?.value ?? 0) < Self.idleAdvance { return nil }
        var batch = current.flatMap { flush($0) } ?? SourceBatch(batch: RecordBatch.empty(Schema()))
        batch.checkpoint = [StateEntry(key: PostgresChangeSource.positionKey, value: position.description)]
        pending = nil
        lastCheckpoint = position
        checkpointed = position
        captured = false
        changesSinceCheckpoint = 0
        return batch
    }

    private mutating func flush(_ name: String) -> SourceBatch? {
        guard var builder = builders[name], builder.count > 0 else { return nil }
        let batch = builder.take(nowMillis: Temporal.nowMicros() / 1000)
        builders[name] = builder
        if current == name { current = nil }
        return batch
    }

    /// The table as an insert or update shows it now, when its columns differ from `table`'s
    /// (an ALTER TABLE in the source), with a sentence naming the change. Deletes carry only the
    /// old row, which may be just the key, so they are not used to tell.
    func drift(of table: CapturedTable, in change: Wal2JSONChange) -> (CapturedTable, String)? {
        guard change.action == .insert || change.action == .update else { return nil }
        var seen = change.columns
        // An update leaves unchanged TOASTed values out of the new row; the old row has them.
        for old in change.identity where !seen.contains(where: { $0.name == old.name }) { seen.append(old) }
        let known = Dictionary(table.columns.map { ($0.name, $0.sqlType) }, uniquingKeysWith: { a, _ in a })
        let now = Dictionary(seen.map { ($0.name, $0.type) }, uniquingKeysWith: { a, _ in a })
        guard known != now else { return nil }
        let added = seen.filter { known[$0.name] == nil }
        let dropped = table.columns.filter { now[$0.name] == nil }
        let retyped = seen.filter { column in known[column.name].map { $0 != column.type } ?? false }
        var parts: [String] = []
        if added.count == 1, dropped.count == 1, added[0].type == dropped[0].sqlType {
            parts.append("column \(dropped[0].name) is now \(added[0].name) (renamed: the replica gains \(added[0].name); \(dropped[0].name) stays, no longer filled)")
        } else {
            parts += added.map { "column \($0.name) (\($0.type)) was added" }
            parts += dropped.map { "column \($0.name) was dropped (it stays in the replica, no longer filled)" }
        }
        parts += retyped.map { "column \($0.name) changed type from \(known[$0.name]!) to \($0.type)" }
        let columns = seen.map { PostgresTypes.column(name: $0.name, formatType: $0.type) }
        let key = change.primaryKey.isEmpty ? table.primaryKey : change.primaryKey
        let changed = CapturedTable(schema: table.schema, name: table.name, columns: columns, primaryKey: key)
        return (changed, "\(table.qualified) changed in the source: " + parts.joined(separator: "; ")
                    + " (from the change at \(change.lsn ?? "?"); schema.evolution decides what the sink does)")
    }

    /// `2026-12-01 21:30:03.047324+00` as ms since the epoch (0 when absent).
    static func millis(_ text: String?) -> Int64 {
        guard let text else { return 0 }
        return TextParsing.withBytes(text) { TextParsing.timestamp($0) }.map { $0 / 1000 } ?? 0
    }
}
