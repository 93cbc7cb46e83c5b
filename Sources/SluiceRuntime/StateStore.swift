import Foundation
import SluiceConnectors
import SluiceCore

/// The project's state store: saved positions for sinks that cannot keep them transactionally,
/// and the run history. A SQLite file (default `.sluice/state.db`) in WAL mode.
public final class StateStore: @unchecked Sendable {
    private let db: SQLiteDatabase
    private let lock = NSLock()
    public let path: String

    public init(path: String) throws {
        try FileSystem.createDirectory(forFile: path)
        self.path = path
        db = try SQLiteDatabase(path: path)
        try db.execute("""
            PRAGMA journal_mode = WAL;
            CREATE TABLE IF NOT EXISTS state (pipeline TEXT NOT NULL, key TEXT NOT NULL, value TEXT NOT NULL,
                updated_at TEXT NOT NULL, PRIMARY KEY (pipeline, key));
            CREATE TABLE IF NOT EXISTS runs (run_id TEXT NOT NULL, pipeline TEXT NOT NULL, status TEXT NOT NULL,
                started_at TEXT NOT NULL, duration_s REAL, records_read INTEGER, records_written INTEGER,
                records_rejected INTEGER, bytes_read INTEGER, quality_score REAL, error TEXT, failed_units TEXT,
                PRIMARY KEY (run_id, pipeline));
            CREATE INDEX IF NOT EXISTS runs_by_pipeline ON runs (pipeline, started_at);
            """)
        try db.execute("""
            CREATE TABLE IF NOT EXISTS schema_versions (pipeline TEXT NOT NULL, version INTEGER NOT NULL, schema TEXT NOT NULL,
                run_id TEXT NOT NULL, created_at TEXT NOT NULL, PRIMARY KEY (pipeline, version));
            """)
        // Quality results came later; older state stores get the column.
        if try !db.query("PRAGMA table_info(runs)").contains(where: { $0[1].text == "quality" }) {
            try db.execute("ALTER TABLE runs ADD COLUMN quality TEXT")
        }
    }

    private func locked<R>(_ body: () throws -> R) rethrows -> R {
        lock.lock()
        defer { lock.unlock() }
        return try body()
    }

    public func loadState(pipeline: String) throws -> [String: String] {
        try locked {
            let rows = try db.query("SELECT key, value FROM state WHERE pipeline = ?", [.string(pipeline)])
            return Dictionary(rows.map { ($0[0].text, $0[1].text) }, uniquingKeysWith: { a, _ in a })
        }
    }

    public func saveState(pipeline: String, entries: [StateEntry]) throws {
        guard !entries.isEmpty else { return }
        try locked {
            try db.transaction {
                for e in entries {
                    try db.run("INSERT INTO state (pipeline, key, value, updated_at) VALUES (?, ?, ?, ?) "
                               + "ON CONFLICT (pipeline, key) DO UPDATE SET value = excluded.value, updated_at = excluded.updated_at",
                               [.string(pipeline), .string(e.key), .string(e.value), .timestamp(Temporal.nowMicros())])
                }
            }
        }
    }

    /// Forgets the pipeline's positions: all of them, or only `keys`.
    public func clearState(pipeline: String, keys: [String]? = nil) throws {
        try locked {
            guard let keys else { return try db.run("DELETE FROM state WHERE pipeline = ?", [.string(pipeline)]) }
            for key in keys { try db.run("DELETE FROM state WHERE pipeline = ? AND key = ?", [.string(pipeline), .string(key)]) }
        }
    }

    public func record(_ run: PipelineRunRecord) throws {
        try locked {
            try db.run("""
                INSERT OR REPLACE INTO runs (run_id, pipeline, status, started_at, duration_s, records_read, records_written,
                    records_rejected, bytes_read, quality_score, error, failed_units, quality) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)
                """, [.string(run.runID), .string(run.pipeline), .string(run.status.rawValue), .timestamp(run.startedAt),
                      .double(run.durationSeconds), .int64(Int64(run.recordsRead)), .int64(Int64(run.recordsWritten)),
                      .int64(Int64(run.recordsRejected)), .int64(Int64(run.bytesRead)),
                      run.qualityScore.map { .double($0) } ?? .null, run.error.map { .string($0) } ?? .null,
                      .string(run.failedUnits.isEmpty ? "[]" : JSONSupport.encode(run.failedUnits)),
                      run.quality.isEmpty ? .null : .string(JSONSupport.encode(run.quality))])
        }
    }

    /// The versions of a pipeline's table schema, oldest first: each time a run changed it.
    public func schemaVersions(pipeline: String) throws -> [(version: Int, schema: Schema, runID: String, createdAt: String)] {
        try locked {
            try db.query("SELECT version, schema, run_id, created_at FROM schema_versions WHERE pipeline = ? ORDER BY version",
                         [.string(pipeline)]).map { r in
                let version: Int = if case .int64(let v) = r[0] { Int(v) } else { 0 }
                return (version, Self.decodeSchema(r[1].text), r[2].text, r[3].text)
            }
        }
    }

    /// Records `schema` as the pipeline's next version (if it differs from the latest); returns its number.
    @discardableResult
    public func recordSchema(pipeline: String, _ schema: Schema, runID: String) throws -> Int {
        let versions = try schemaVersions(pipeline: pipeline)
        if let last = versions.last, last.schema == schema { return last.version }
        let version = (versions.last?.version ?? 0) + 1
        try locked {
            try db.run("INSERT INTO schema_versions (pipeline, version, schema, run_id, created_at) VALUES (?, ?, ?, ?, ?)",
                       [.string(pipeline), .int64(Int64(version)), .string(Self.encodeSchema(schema)), .string(runID),
                        .string(Temporal.formatTimestamp(Temporal.nowMicros()))])
        }
        return version
    }

    /// `[{"name", "type", "nullable", "primary_key"}]`.
    static func encodeSchema(_ schema: Schema) -> String {
        "[" + schema.fields.map { f in
            "{\"name\":\(JSONText.quoted(f.name)),\"type\":\(JSONText.quoted(f.type.description)),\"nullable\":\(f.nullable),\"primary_key\":\(f.primaryKey)}"
        }.joined(separator: ",") + "]"
    }

    static func decodeSchema(_ text: String) -> Schema {
        let items = (try? JSONSerialization.jsonObject(with: Data(text.utf8))) as? [[String: Any]] ?? []
        return Schema(items.compactMap { item in
            guard let name = item["name"] as? String, let type = (item["type"] as? String).flatMap(DataType.init(parsing:)) else { return nil }
            return Field(name, type, nullable: item["nullable"] as? Bool ?? true, primaryKey: item["primary_key"] as? Bool ?? false)
        })
    }

    public func runs(pipeline: String?, limit: Int) throws -> [PipelineRunRecord] {
        try locked {
            var sql = "SELECT run_id, pipeline, status, started_at, duration_s, records_read, records_written, records_rejected, bytes_read, quality_score, error, failed_units, quality FROM runs"
            var args: [Value] = []
            if let pipeline { sql += " WHERE pipeline = ?"; args.append(.string(pipeline)) }
            sql += " ORDER BY started_at DESC, rowid DESC LIMIT ?"
            args.append(.int64(Int64(limit)))
            return try db.query(sql, args).map { r in
                var rec = PipelineRunRecord(runID: r[0].text, pipeline: r[1].text)
                rec.status = PipelineStatus(rawValue: r[2].text) ?? .failed
                rec.startedAt = Value.parse(r[3].text, as: .timestamp).flatMap { if case .timestamp(let t) = $0 { t } else { nil } } ?? 0
                if case .double(let d) = r[4] { rec.durationSeconds = d }
                if case .int64(let v) = r[5] { rec.recordsRead = Int(v) }
                if case .int64(let v) = r[6] { rec.recordsWritten = Int(v) }
                if case .int64(let v) = r[7] { rec.recordsRejected = Int(v) }
                if case .int64(let v) = r[8] { rec.bytesRead = Int(v) }
                if case .double(let v) = r[9] { rec.qualityScore = v }
                if case .string(let e) = r[10] { rec.error = e }
                if case .string(let q) = r[12] { rec.quality = (try? JSONDecoder().decode([RuleResult].self, from: Data(q.utf8))) ?? [] }
                if case .string(let units) = r[11] { rec.failedUnits = (try? JSONDecoder().decode([FailedUnit].self, from: Data(units.utf8))) ?? [] }
                return rec
            }
        }
    }
}

enum JSONSupport {
    static func encode<T: Encodable>(_ value: T) -> String {
        let encoder = JSONEncoder()
        encoder.outputFormatting = [.sortedKeys, .withoutEscapingSlashes]
        return (try? encoder.encode(value)).map { String(decoding: $0, as: UTF8.self) } ?? "null"
    }
}
