import SluiceCore

/// replicate: applying a unit of change records (`ChangeRecords.operationColumn`) to the table.
///
/// Every change carries the whole row (REPLICA IDENTITY FULL on the source), so what a unit
/// leaves behind for a key is decided by its last change of that key: a delete removes the row,
/// anything else upserts it. The staged changes are reduced to that last change per key
/// (`DISTINCT ON … ORDER BY sluice_seq DESC`), then applied with one DELETE and one
/// `INSERT … ON CONFLICT DO UPDATE`. A truncate empties the table and voids the changes staged
/// before it.
extension PostgresSink {
    func noteTruncates(_ batch: RecordBatch) {
        guard let op = batch[ChangeRecords.operationColumn] else { return }
        for row in 0..<batch.rowCount where op.withBytes(at: row, { $0.first == UInt8(ascii: "t") }) {
            lastTruncate = stagedRows + row
        }
    }

    func replicate(from stage: String, db: PostgresClient) async throws {
        guard let opIndex = schema.index(of: ChangeRecords.operationColumn) else {
            throw SluiceError(.sink, "mode: replicate takes change records, and these rows have no \(ChangeRecords.operationColumn) column",
                              component: Self.component, fix: "use a change data capture source (type: postgres, mode: cdc)")
        }
        let op = "s.c\(opIndex)"
        let data = schema.fields.indices.filter { $0 != opIndex }
        let keyIndices = primaryKey.compactMap { schema.index(of: $0) }
        let stageKeys = keyIndices.map { "s.c\($0)" }.joined(separator: ", ")
        var window = ""
        if let truncated = lastTruncate {
            try await db.execute("DELETE FROM \(target)")
            window = "WHERE s.sluice_seq > \(truncated)"
        }
        try await db.execute("""
            CREATE TEMP TABLE sluice_apply ON COMMIT DROP AS SELECT DISTINCT ON (\(stageKeys)) s.* FROM \(stage) s \(window)
            ORDER BY \(stageKeys), s.sluice_seq DESC
            """)
        let matches = keyIndices.map { "t.\(PostgresSQL.quote(schema.fields[$0].name)) = \(staged($0))" }.joined(separator: " AND ")
        try await db.execute("DELETE FROM \(target) AS t USING sluice_apply s WHERE \(op) = 'd' AND \(matches)")
        let columns = data.map { PostgresSQL.quote(schema.fields[$0].name) }.joined(separator: ", ")
        let values = data.map(staged).joined(separator: ", ")
        let updates = data.filter { !primaryKey.contains(schema.fields[$0].name) }
            .map { "\(PostgresSQL.quote(schema.fields[$0].name)) = EXCLUDED.\(PostgresSQL.quote(schema.fields[$0].name))" }
        let conflict = "ON CONFLICT (\(primaryKey.map(PostgresSQL.quote).joined(separator: ", "))) "
            + (updates.isEmpty ? "DO NOTHING" : "DO UPDATE SET \(updates.joined(separator: ", "))")
        try await db.execute("INSERT INTO \(target) (\(columns)) SELECT \(values) FROM sluice_apply s WHERE \(op) <> 'd' \(conflict)")
    }
}
