import Foundation
import SluiceConfig
import SluiceConnectors
import SluiceCore
import SluiceFormats

/// `sluice doctor` for change data capture: what the server needs, and the slot's health.
extension Doctor {
    /// Past this much WAL waiting in a slot, the slot is reported as lagging.
    static let slotLagLimit: Int64 = 1 << 30

    static func changeCapture(_ pipeline: String, _ c: PostgresSourceConfig) async -> [Finding] {
        let component = "source postgres cdc"
        let slot = c.slot ?? "sluice_\(pipeline)"
        var findings: [Finding] = []
        findings.append(await postgres(pipeline, component, url: c.url) { db in
            try await PostgresChangeSource.checkServer(db)
            return (true, "wal_level is logical and \(db.endpoint.user) may use replication slots", nil)
        })
        for table in c.tables {
            findings.append(await postgres(pipeline, component, url: c.url) { db in
                let row = try await db.rows("""
                    SELECT (to_regclass($1) IS NOT NULL)::text,
                           (CASE WHEN to_regclass($1) IS NOT NULL THEN has_table_privilege(to_regclass($1), 'SELECT') END)::text,
                           (SELECT relreplident::text FROM pg_class WHERE oid = to_regclass($1))
                    """, [qualifiedForLookup(table)]).first ?? []
                guard row.first == "true" else {
                    return (false, "table \(table) does not exist (or is not visible to \(db.endpoint.user))", "check the name (schema.table)")
                }
                guard row[1] == "true" else { return (false, "\(db.endpoint.user) may not read \(table)", "GRANT SELECT ON \(table) TO \(db.endpoint.user)") }
                if row[2] != "f", !c.fullReplicaIdentity {
                    return (false, "\(table) has REPLICA IDENTITY \(row[2] == "d" ? "DEFAULT" : row[2] ?? "?"): deletes and updates carry only the key",
                            "ALTER TABLE \(table) REPLICA IDENTITY FULL (or drop replica_identity: keep from the source)")
                }
                return (true, "table \(table) readable" + (row[2] == "f" ? ", REPLICA IDENTITY FULL" : "; REPLICA IDENTITY FULL is set on the first run"), nil)
            })
        }
        findings.append(await postgres(pipeline, component, url: c.url) { db in
            try await slotHealth(db, slot: slot, pipeline: pipeline)
        })
        let idle = await postgres(pipeline, component, url: c.url) { db in try await idleSlots(db, except: slot) }
        if !idle.ok { findings.append(idle) }
        return findings
    }

    /// A replication slot's state: WAL not yet confirmed (and how old its oldest transaction is),
    /// WAL held on the server, whether a reader is connected, and the server's wal_status.
    public struct SlotStatus: Sendable {
        public var lagBytes: Int64
        public var lagSeconds: Double?
        public var retainedBytes: Int64
        public var active: Bool
        public var walStatus: String
    }

    static func slotStatus(_ db: PostgresClient, slot: String) async throws -> SlotStatus? {
        let rows = try await db.rows("""
            SELECT plugin::text, active::text, (pg_current_wal_lsn() - confirmed_flush_lsn)::bigint::text,
                   (pg_current_wal_lsn() - restart_lsn)::bigint::text, coalesce(wal_status, '')
            FROM pg_replication_slots WHERE slot_name = $1
            """, [slot])
        guard let row = rows.first else { return nil }
        var status = SlotStatus(lagBytes: Int64(row[2] ?? "0") ?? 0, lagSeconds: nil, retainedBytes: Int64(row[3] ?? "0") ?? 0,
                                active: row[1] == "true", walStatus: row[4] ?? "")
        if status.lagBytes > 0 {
            // The oldest transaction still waiting in the slot, read without consuming it.
            let first = try await db.rows("""
                SELECT data FROM pg_logical_slot_peek_changes($1, NULL, 1, 'format-version', '2', 'include-timestamp', '1', 'include-transaction', '1')
                """, [slot]).first?.first ?? nil
            if let first, let change = try? first.withCString({ p in try Wal2JSONChange.parse(UnsafeRawBufferPointer(start: p, count: strlen(p))) }),
               let ts = change.timestamp, let micros = TextParsing.withBytes(ts, { TextParsing.timestamp($0) }) {
                status.lagSeconds = max(0, Double(Temporal.nowMicros() - micros) / 1e6)
            }
        } else {
            status.lagSeconds = 0
        }
        return status
    }

    /// The slot of a CDC pipeline, for `/metrics` under `sluice serve`; nil when it cannot be read.
    public static func slotStatus(pipeline: String, _ c: PostgresSourceConfig) async -> SlotStatus? {
        guard let endpoint = try? PostgresEndpoint(url: c.url) else { return nil }
        return try? await PostgresClient.using(endpoint, component: "source postgres cdc") { db in
            try await slotStatus(db, slot: c.slot ?? "sluice_\(pipeline)")
        }
    }

    /// The slot's lag and WAL as a doctor finding: lagging past `slotLagLimit`, or lost.
    static func slotHealth(_ db: PostgresClient, slot: String, pipeline: String) async throws -> (Bool, String, String?) {
        guard let status = try await slotStatus(db, slot: slot) else {
            return (true, "slot \(slot) does not exist yet; the first run creates it", nil)
        }
        let lag = status.lagBytes, retained = status.retainedBytes
        let seconds = lag > 0 ? status.lagSeconds : nil
        var message = "slot \(slot): \(byteText(lag)) of changes waiting"
        if let seconds { message += String(format: " (oldest %.0f s)", seconds) }
        message += ", \(byteText(retained)) of WAL held on the server, \(status.active ? "in use now" : "idle between runs")"
        if status.walStatus == "lost" {
            return (false, message + "; the server dropped the WAL it needed (wal_status lost)",
                    "sluice state reset \(pipeline) and drop the slot: SELECT pg_drop_replication_slot('\(slot)') — the next run takes a new snapshot")
        }
        if lag > slotLagLimit {
            return (false, message, "run the pipeline more often (sluice run \(pipeline) --follow, or a schedule), or the server keeps WAL for it")
        }
        return (true, message, nil)
    }

    /// Other idle wal2json slots of the database that hold much WAL: often left by a pipeline
    /// that was renamed or removed.
    static func idleSlots(_ db: PostgresClient, except slot: String) async throws -> (Bool, String, String?) {
        let others = try await db.rows("""
            SELECT slot_name::text FROM pg_replication_slots WHERE slot_name <> $1 AND plugin = 'wal2json' AND NOT active
              AND database = current_database() AND (pg_current_wal_lsn() - restart_lsn) > $2::bigint
            """, [slot, String(slotLagLimit)]).compactMap { $0.first ?? nil }
        guard !others.isEmpty else { return (true, "no idle slots holding WAL", nil) }
        return (false, "idle wal2json slots hold more than \(byteText(slotLagLimit)) of WAL each: \(others.joined(separator: ", "))",
                "drop the slots no pipeline uses: " + others.map { "SELECT pg_drop_replication_slot('\($0)');" }.joined(separator: " "))
    }

    static func byteText(_ n: Int64) -> String {
        n >= 1 << 30 ? String(format: "%.1f GiB", Double(n) / Double(1 << 30))
            : n >= 1 << 20 ? String(format: "%.1f MiB", Double(n) / Double(1 << 20))
            : n >= 1024 ? "\(n / 1024) KiB" : "\(n) bytes"
    }
}
