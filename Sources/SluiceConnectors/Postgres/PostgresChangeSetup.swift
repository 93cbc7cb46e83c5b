import SluiceConfig
import SluiceCore

/// What change data capture needs from the server, checked before anything is read, each
/// problem with its fix: logical WAL, the REPLICATION privilege, the tables, their replica
/// identity, and the slot.
struct PostgresChangeSetup {
    let db: PostgresClient
    let config: PostgresSourceConfig
    let slot: String
    let component: String

    private func problem(_ message: String, fix: String) -> SluiceError {
        SluiceError(.source, message, component: component, location: db.endpoint.display, fix: fix)
    }

    func checkServer() async throws { try await Self.checkServer(db, component: component) }

    /// wal_level and the REPLICATION attribute.
    static func checkServer(_ db: PostgresClient, component: String) async throws {
        func problem(_ message: String, fix: String) -> SluiceError {
            SluiceError(.source, message, component: component, location: db.endpoint.display, fix: fix)
        }
        let level = try await db.rows("SELECT current_setting('wal_level')").first?.first ?? nil
        guard level == "logical" else {
            throw problem("wal_level is \(level ?? "unknown"), and change data capture needs logical",
                          fix: "ALTER SYSTEM SET wal_level = logical; then restart PostgreSQL")
        }
        let role = try await db.rows("SELECT (rolreplication OR rolsuper)::text FROM pg_roles WHERE rolname = current_user").first?.first ?? nil
        guard role == "true" else {
            throw problem("user \(db.endpoint.user) may not read replication slots (it lacks the REPLICATION attribute)",
                          fix: "ALTER ROLE \(db.endpoint.user) REPLICATION;")
        }
    }

    func describe(_ name: String) async throws -> CapturedTable {
        let relation = try await PostgresRelation.describe(db, table: name, query: nil, component: component)
        guard !relation.primaryKey.isEmpty || !config.emitsRows else {
            throw problem("table \(name) has no primary key, and a replica is kept by key",
                          fix: "add a primary key to \(name), or append its change log instead (sink mode: append)")
        }
        let (schema, table) = try await resolvedName(name)
        return CapturedTable(schema: schema, name: table, columns: relation.columns, primaryKey: relation.primaryKey)
    }

    private func resolvedName(_ name: String) async throws -> (String, String) {
        let (schema, table) = PostgresSQL.split(name, defaultSchema: "")
        guard schema.isEmpty else { return (schema, table) }
        let found = try await db.rows("""
            SELECT n.nspname FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace
            WHERE c.relname = $1 AND n.nspname = ANY (current_schemas(false)) ORDER BY array_position(current_schemas(false), n.nspname) LIMIT 1
            """, [table]).first?.first ?? nil
        return (found ?? "public", table)
    }

    /// REPLICA IDENTITY FULL: deletes and updates carry the whole old row, so a change log has
    /// full before-images and unchanged TOASTed values (left out of an update's new row) are
    /// taken from the old one.
    func ensureFullReplicaIdentity(_ tables: [CapturedTable]) async throws {
        for table in tables {
            let identity = try await db.rows("""
                SELECT c.relreplident::text FROM pg_class c JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = $1 AND c.relname = $2
                """, [table.schema, table.name]).first?.first ?? nil
            guard identity != "f" else { continue }
            do {
                try await db.execute("ALTER TABLE \(PostgresSQL.qualified(table.schema, table.name)) REPLICA IDENTITY FULL")
            } catch let e as SluiceError {
                throw problem("cannot set REPLICA IDENTITY FULL on \(table.qualified): \(e.message)",
                              fix: "run ALTER TABLE \(table.qualified) REPLICA IDENTITY FULL as the table's owner, or set replica_identity: keep on the source")
            }
        }
    }

    /// Creates the slot (wal2json) when it is missing; refuses one made for another plugin or database.
    func ensureSlot() async throws {
        let rows = try await db.rows("SELECT plugin::text, database::text FROM pg_replication_slots WHERE slot_name = $1", [slot])
        if let existing = rows.first {
            guard existing[0] == "wal2json" else {
                throw problem("replication slot \(slot) decodes with \(existing[0] ?? "a physical stream"), not wal2json",
                              fix: "choose another slot: name on the source, or drop this one: SELECT pg_drop_replication_slot('\(slot)')")
            }
            guard existing[1] == db.endpoint.database else {
                throw problem("replication slot \(slot) belongs to database \(existing[1] ?? "?"), not \(db.endpoint.database)",
                              fix: "choose another slot: name on the source")
            }
            return
        }
        do {
            try await db.stream("SELECT pg_create_logical_replication_slot($1, 'wal2json')", [slot]) { _ in }
        } catch let e as SluiceError {
            if e.code == "42710" { return }   // created meanwhile by another run
            let missingPlugin = e.message.contains("wal2json")
            throw problem("cannot create replication slot \(slot): \(e.message)",
                          fix: missingPlugin ? "install the wal2json plugin on the server (Debian: postgresql-15-wal2json) and, on 15.19 and later, list it in output_plugin_libraries"
                              : e.code == "53400" ? "raise max_replication_slots, or drop unused slots (SELECT slot_name, active FROM pg_replication_slots)"
                              : "check the user's REPLICATION attribute and wal_level = logical")
        }
    }
}
