import Foundation
import Sluice
import Testing

/// Change data capture against the real server (part of the serialized PostgreSQL suite: the
/// outage test stops the server). Each test owns a schema and slots named after it.
extension PostgresTests {
    /// A table with every mapped type. `big` is stored out of line without compression, so an
    /// update that leaves it alone sends it as an unchanged TOAST value (absent from the new row).
    static func createItems(_ table: String) throws {
        try psql("""
            CREATE TABLE \(table) (id bigint PRIMARY KEY, name text, qty integer, price numeric(12,2), score double precision,
                active boolean, born date, seen timestamptz, tags text[], doc jsonb, blob bytea, uid uuid, big text);
            ALTER TABLE \(table) ALTER COLUMN big SET STORAGE EXTERNAL;
            """)
    }

    /// Random transactions over `items`, tracked by a model of which ids exist, so every statement
    /// changes exactly the rows it names. `changes` counts the committed row changes.
    struct Workload {
        var rng: SeededRandom
        var live: Set<Int> = []
        var nextID = 1
        var changes = 0

        init(seed: UInt64) { rng = SeededRandom(seed: seed) }

        mutating func literal(_ id: Int) -> String {
            func maybe(_ s: String) -> String { Int.random(in: 0..<8, using: &rng) == 0 ? "NULL" : s }
            let big = (0..<(Int.random(in: 0..<4, using: &rng) == 0 ? 250 : 2)).map { _ in String(UInt64.random(in: 0...UInt64.max, using: &rng), radix: 36) }.joined()
            let name = ["plain", "ünïcødé ✓", "quote ' and \"", "tab\there", "semi; --"][Int.random(in: 0..<5, using: &rng)] + " \(id)"
            return "(\(id), \(maybe("'\(name.replacingOccurrences(of: "'", with: "''"))'")), \(maybe("\(Int.random(in: -1000...1000, using: &rng))")), "
                + "\(maybe("\(Int.random(in: 0...99999, using: &rng)).\(Int.random(in: 10...99, using: &rng))")), \(maybe("\(Double.random(in: -1e6...1e6, using: &rng))")), "
                + "\(maybe(Bool.random(using: &rng) ? "true" : "false")), \(maybe("'19\(Int.random(in: 50...99, using: &rng))-0\(Int.random(in: 1...9, using: &rng))-1\(Int.random(in: 0...9, using: &rng))'")), "
                + "\(maybe("'2024-03-0\(Int.random(in: 1...9, using: &rng)) 12:34:56.\(Int.random(in: 100000...999999, using: &rng))+00'")), "
                + "\(maybe("ARRAY['a', 'b \(id)', NULL]")), \(maybe("'{\"k\": \(id), \"nested\": [1, {\"x\": null}]}'")), \(maybe("'\\x\(String(format: "%04x", id))ff'::bytea")), "
                + "\(maybe("'\(UUID().uuidString.lowercased())'")), '\(big)')"
        }

        /// One transaction (committed, or rolled back one time in ten) as SQL.
        mutating func transaction(on table: String) -> String {
            var sql = "BEGIN;\n"
            var pending = 0
            for _ in 0..<Int.random(in: 1...6, using: &rng) {
                let roll = Int.random(in: 0..<10, using: &rng)
                if roll < 4 || live.count < 5 {
                    sql += "INSERT INTO \(table) VALUES \(literal(nextID));\n"
                    live.insert(nextID)
                    nextID += 1
                } else if roll < 6, let id = live.randomElement(using: &rng) {
                    // Only qty changes: big travels as an unchanged TOAST value.
                    sql += "UPDATE \(table) SET qty = \(Int.random(in: 0...50, using: &rng)) WHERE id = \(id);\n"
                } else if roll < 7, let id = live.randomElement(using: &rng) {
                    sql += "UPDATE \(table) SET name = 'renamed \(id)', big = big || 'x', tags = NULL WHERE id = \(id);\n"
                } else if roll < 8, let id = live.randomElement(using: &rng) {
                    // The key itself changes.
                    sql += "UPDATE \(table) SET id = \(nextID) WHERE id = \(id);\n"
                    live.remove(id)
                    live.insert(nextID)
                    nextID += 1
                } else if let id = live.randomElement(using: &rng) {
                    sql += "DELETE FROM \(table) WHERE id = \(id);\n"
                    live.remove(id)
                }
                pending += 1
            }
            if Int.random(in: 0..<10, using: &rng) == 0 {
                // Rolled back: the model forgets it again.
                return sql + "ROLLBACK;\n"
            }
            changes += pending
            return sql + "COMMIT;\n"
        }
    }

    /// Runs a workload script; rollbacks make the model wrong, so a rolled-back transaction is
    /// generated against a copy of it.
    static func script(_ w: inout Workload, table: String, transactions: Int, pause: Double = 0) -> String {
        var sql = ""
        for _ in 0..<transactions {
            var attempt = w
            let tx = attempt.transaction(on: table)
            if tx.hasSuffix("ROLLBACK;\n") { w.rng = attempt.rng } else { w = attempt }
            sql += tx
            if pause > 0 { sql += "SELECT pg_sleep(\(pause));\n" }
        }
        return sql
    }

    /// Differences between the source table and its PostgreSQL replica, both ways.
    static func replicaDifferences(source: String, replica: String) throws -> String {
        let s = "id, name, qty, price, score, active, born, seen, to_jsonb(tags), doc, blob, uid::text, big"
        let r = "id, name, qty, price, score, active, born, seen, tags, doc, blob, uid, big"
        return try psql("""
            SELECT (SELECT count(*) FROM (SELECT \(s) FROM \(source) EXCEPT SELECT \(r) FROM \(replica)) a) || '/' ||
                   (SELECT count(*) FROM (SELECT \(r) FROM \(replica) EXCEPT SELECT \(s) FROM \(source)) b) || '/' ||
                   (SELECT count(*) FROM \(source))
            """).joined()
    }

    /// The source table as SQLite would show it, and the SQLite replica, as comparable text rows.
    static func sqliteDifferences(source: String, replicaFile: String) throws -> (String, String) {
        let pg = try psql("""
            SELECT id || '|' || coalesce(name, '~') || '|' || coalesce(qty::text, '~') || '|' || coalesce((price * 100)::bigint::text, '~') || '|'
                || coalesce(active::int::text, '~') || '|' || length(big) || '|' || coalesce(doc::text, '~') FROM \(source) ORDER BY id
            """).joined(separator: "\n")
        let lite = try query(replicaFile, """
            SELECT id || '|' || coalesce(name, '~') || '|' || coalesce(qty, '~') || '|' || coalesce(CAST(round(price * 100) AS INTEGER), '~') || '|'
                || coalesce(active, '~') || '|' || length(big) || '|' || coalesce(doc, '~') FROM items ORDER BY id
            """).map { $0.joined() }.joined(separator: "\n")
        return (pg, lite)
    }

    /// The change log's events (every JSON line under `dir`), as parsed objects.
    static func changeLog(_ dir: String) throws -> [[String: Any]] {
        var out: [[String: Any]] = []
        guard let e = FileManager.default.enumerator(atPath: dir) else { return out }
        while let rel = e.nextObject() as? String {
            guard rel.hasSuffix(".jsonl"), !(rel as NSString).lastPathComponent.hasPrefix(".") else { continue }
            let text = try String(contentsOfFile: dir + "/" + rel, encoding: .utf8)
            for line in text.split(separator: "\n") {
                out.append(try JSONSerialization.jsonObject(with: Data(line.utf8)) as! [String: Any])
            }
        }
        return out
    }

    /// Stream events of a change log must be unique by (commit_lsn, lsn) and as many as `expected`.
    static func expectEachChangeOnce(_ events: [[String: Any]], expected: Int) {
        let stream = events.filter { (($0["source"] as? [String: Any])?["snapshot"] as? Bool) == false }
        let positions = stream.map { e -> String in
            let source = e["source"] as! [String: Any]
            return "\(source["commit_lsn"]!)/\(source["lsn"]!)"
        }
        #expect(Set(positions).count == positions.count, "a change was logged twice")
        #expect(stream.count == expected, "\(stream.count) changes logged, \(expected) made")
    }

    func cdcProject(_ s: String, in dir: String, extra: String = "") throws {
        try project("""
            pipelines:
              lite:
                source: { type: postgres, url: "$URL", mode: cdc, tables: [\(s).items], slot: \(s)_lite }
                sink: { type: sqlite, path: replica.db, table: items, mode: replicate }
              pg:
                source: { type: postgres, url: "$URL", mode: cdc, tables: [\(s).items], slot: \(s)_pg }
                sink: { type: postgres, url: "$URL", table: \(s).replica, mode: replicate }
              log:
                source: { type: postgres, url: "$URL", mode: cdc, tables: [\(s).items], slot: \(s)_log }
                sink: { type: files, path: changes, format: jsonl }
            \(extra)
            """, in: dir)
    }

    func dropSlots(_ s: String) throws {
        try Self.psql("SELECT pg_drop_replication_slot(slot_name) FROM pg_replication_slots WHERE slot_name LIKE '\(s)%'")
    }

    @Test func changeCaptureReplicatesARandomWorkloadExactly() throws {
        let s = try Self.freshSchema("cdc")
        defer { try? dropSlots(s) }
        try Self.createItems("\(s).items")
        var workload = Workload(seed: 0x5EED)
        // Rows before the first run come through the snapshot.
        try Self.psql(Self.script(&workload, table: "\(s).items", transactions: 40))
        let snapshotRows = Int(try Self.psql("SELECT count(*) FROM \(s).items")[0])!
        let dir = try makeTemporaryDirectory("cdc")
        try cdcProject(s, in: dir)
        let changesBefore = workload.changes
        for round in 0..<4 {
            let run = try SluiceProcess.run(["run", "--json"], in: dir)
            #expect(run.status == 0, "round \(round): \(run.stderr)")
            #expect(try Self.replicaDifferences(source: "\(s).items", replica: "\(s).replica").hasPrefix("0/0/"), "round \(round)")
            let (pg, lite) = try Self.sqliteDifferences(source: "\(s).items", replicaFile: dir + "/replica.db")
            #expect(pg == lite, "round \(round)")
            try Self.psql(Self.script(&workload, table: "\(s).items", transactions: 60))
        }
        let final = try SluiceProcess.run(["run", "--json"], in: dir)
        #expect(final.status == 0, "\(final.stderr)")
        #expect(try Self.replicaDifferences(source: "\(s).items", replica: "\(s).replica").hasPrefix("0/0/"))
        let (pg, lite) = try Self.sqliteDifferences(source: "\(s).items", replicaFile: dir + "/replica.db")
        #expect(pg == lite)
        let events = try Self.changeLog(dir + "/changes")
        #expect(events.filter { $0["op"] as? String == "r" }.count == snapshotRows)
        Self.expectEachChangeOnce(events, expected: workload.changes - changesBefore)
        // Every event has the envelope's parts; updates carry the old row (REPLICA IDENTITY FULL).
        for e in events.prefix(200) {
            #expect(["r", "c", "u", "d"].contains(e["op"] as? String ?? ""))
            let source = e["source"] as! [String: Any]
            #expect(source["table"] as? String == "items" && source["schema"] as? String == s && source["db"] != nil && source["ts_ms"] != nil)
            if e["op"] as? String == "u" { #expect(e["before"] is [String: Any] && e["after"] is [String: Any]) }
            if e["op"] as? String == "d" { #expect(e["before"] is [String: Any] && e["after"] is NSNull) }
        }
        // The slots were moved on to what the sinks committed: nothing left to read.
        let lag = try Self.psql("SELECT count(*) FROM pg_replication_slots WHERE slot_name LIKE '\(s)%' AND confirmed_flush_lsn < pg_current_wal_lsn() - 1000000")
        #expect(lag == ["0"])
    }

    @Test func killNineDuringChangeCaptureLosesAndDuplicatesNothing() throws {
        let s = try Self.freshSchema("cdckill")
        defer { try? dropSlots(s) }
        try Self.createItems("\(s).items")
        var workload = Workload(seed: 0xC0DE)
        try Self.psql(Self.script(&workload, table: "\(s).items", transactions: 30))
        let dir = try makeTemporaryDirectory("cdc-kill")
        try cdcProject(s, in: dir)
        // Take the snapshot, then let changes flow in the background while runs are killed.
        #expect(try SluiceProcess.run(["run"], in: dir).status == 0)
        let changesBefore = workload.changes
        let sqlFile = dir + "/workload.sql"
        try write(Self.script(&workload, table: "\(s).items", transactions: 300, pause: 0.01), to: sqlFile)
        let done = dir + "/workload.done"
        system("(psql '\(try Self.serverURL())' -X -q -v ON_ERROR_STOP=1 -f \(sqlFile) && touch \(done)) >/dev/null 2>&1 </dev/null &")
        var rng = SeededRandom(seed: 0xDEAD)
        var killed = 0
        for _ in 0..<12 {
            let process = try SluiceProcess.start(["run", "--follow"], in: dir)
            usleep(UInt32(Double.random(in: 0.1...0.7, using: &rng) * 1_000_000))
            if process.isRunning {
                kill(process.processIdentifier, SIGKILL)
                killed += 1
            }
            process.waitUntilExit()
        }
        #expect(killed >= 10)
        for _ in 0..<600 where !FileManager.default.fileExists(atPath: done) { usleep(50_000) }
        #expect(FileManager.default.fileExists(atPath: done), "the workload did not finish")
        let final = try SluiceProcess.run(["run", "--json"], in: dir)
        #expect(final.status == 0, "\(final.stderr)")
        #expect(try Self.replicaDifferences(source: "\(s).items", replica: "\(s).replica").hasPrefix("0/0/"))
        let (pg, lite) = try Self.sqliteDifferences(source: "\(s).items", replicaFile: dir + "/replica.db")
        #expect(pg == lite)
        Self.expectEachChangeOnce(try Self.changeLog(dir + "/changes"), expected: workload.changes - changesBefore)
        #expect(try Self.psql("SELECT count(*) FROM pg_stat_activity WHERE state LIKE 'idle in transaction%'") == ["0"])
    }

    /// Writes while the snapshot is being read: the snapshot and the stream meet exactly, so the
    /// replica ends equal and replaying the change log gives the table.
    @Test func snapshotAndStreamMeetWithoutGapOrOverlap() throws {
        let s = try Self.freshSchema("cdcsnap")
        defer { try? dropSlots(s) }
        try Self.psql("""
            CREATE TABLE \(s).items (id bigint PRIMARY KEY, name text, qty integer, price numeric(12,2), score double precision,
                active boolean, born date, seen timestamptz, tags text[], doc jsonb, blob bytea, uid uuid, big text);
            INSERT INTO \(s).items (id, name, qty, big) SELECT i, 'row ' || i, i % 100, repeat('b', 10) FROM generate_series(1, 60000) i;
            """)
        let dir = try makeTemporaryDirectory("cdc-snap")
        try cdcProject(s, in: dir)
        var sql = ""
        for k in 0..<200 {
            let id = 1 + (k * 7919) % 60000
            sql += "UPDATE \(s).items SET qty = qty + 1000, name = 'moved \(k)' WHERE id = \(id);\n"
            sql += "DELETE FROM \(s).items WHERE id = \(60000 - k);\n"
            sql += "INSERT INTO \(s).items (id, name, qty, big) VALUES (\(100000 + k), 'new \(k)', \(k), 'n');\n"
            sql += "SELECT pg_sleep(0.005);\n"
        }
        let sqlFile = dir + "/during.sql"
        try write(sql, to: sqlFile)
        let done = dir + "/during.done"
        let run = try SluiceProcess.start(["run"], in: dir)
        usleep(100_000)
        system("(psql '\(try Self.serverURL())' -X -q -v ON_ERROR_STOP=1 -f \(sqlFile) && touch \(done)) >/dev/null 2>&1 </dev/null")
        run.waitUntilExit()
        #expect(run.terminationStatus == 0)
        #expect(FileManager.default.fileExists(atPath: done))
        let again = try SluiceProcess.run(["run"], in: dir)
        #expect(again.status == 0, "\(again.stderr)")
        #expect(try Self.replicaDifferences(source: "\(s).items", replica: "\(s).replica").hasPrefix("0/0/"))
        let (pg, lite) = try Self.sqliteDifferences(source: "\(s).items", replicaFile: dir + "/replica.db")
        #expect(pg == lite)
        // Replay the log: snapshot rows, then the changes in commit order.
        let events = try Self.changeLog(dir + "/changes").sorted { a, b in
            let sa = a["source"] as! [String: Any], sb = b["source"] as! [String: Any]
            let (snapA, snapB) = (sa["snapshot"] as! Bool, sb["snapshot"] as! Bool)
            if snapA != snapB { return snapA }
            let (ca, cb) = (sa["commit_lsn"] as? Int ?? 0, sb["commit_lsn"] as? Int ?? 0)
            return ca != cb ? ca < cb : (sa["lsn"] as? Int ?? 0) < (sb["lsn"] as? Int ?? 0)
        }
        var replayed: [Int: String] = [:]
        for e in events {
            if let before = e["before"] as? [String: Any] { replayed[before["id"] as! Int] = nil }
            if let after = e["after"] as? [String: Any] { replayed[after["id"] as! Int] = "\(after["name"] as? String ?? "~")|\(after["qty"] as? Int ?? -1)" }
        }
        let expected = try Self.psql("SELECT id || '|' || coalesce(name, '~') || '|' || coalesce(qty, -1) FROM \(s).items ORDER BY id")
        #expect(replayed.keys.sorted().map { "\($0)|\(replayed[$0]!)" } == expected)
    }
}

extension PostgresTests {
    /// ALTER TABLE in the source while changes flow: added, renamed, retyped and dropped columns
    /// reach an evolving replica; a frozen one fails, naming the change, and keeps its position.
    @Test func sourceSchemaChangesFollowTheEvolutionPolicy() throws {
        let s = try Self.freshSchema("cdcdrift")
        defer { try? dropSlots(s) }
        try Self.psql("CREATE TABLE \(s).items (id bigint PRIMARY KEY, name text, qty integer); INSERT INTO \(s).items VALUES (1, 'one', 1)")
        let dir = try makeTemporaryDirectory("cdc-drift")
        try project("""
            pipelines:
              pg:
                source: { type: postgres, url: "$URL", mode: cdc, tables: [\(s).items], slot: \(s)_pg }
                sink: { type: postgres, url: "$URL", table: \(s).replica, mode: replicate }
              lite:
                source: { type: postgres, url: "$URL", mode: cdc, tables: [\(s).items], slot: \(s)_lite }
                sink: { type: sqlite, path: replica.db, table: items, mode: replicate }
              frozen:
                source: { type: postgres, url: "$URL", mode: cdc, tables: [\(s).items], slot: \(s)_frozen }
                schema: { evolution: freeze }
                sink: { type: sqlite, path: frozen.db, table: items, mode: replicate }
            """, in: dir)
        var run = try SluiceProcess.run(["run", "--json"], in: dir)
        #expect(run.status == 0, "\(run.stderr)")

        try Self.psql("""
            ALTER TABLE \(s).items ADD COLUMN extra text;
            INSERT INTO \(s).items VALUES (2, 'two', 2, 'x2');
            UPDATE \(s).items SET extra = 'x1' WHERE id = 1;
            ALTER TABLE \(s).items RENAME COLUMN name TO title;
            INSERT INTO \(s).items VALUES (3, 'three', 3, 'x3');
            ALTER TABLE \(s).items ALTER COLUMN qty TYPE numeric(10,2);
            INSERT INTO \(s).items VALUES (4, 'four', 4.5, 'x4');
            ALTER TABLE \(s).items DROP COLUMN extra;
            INSERT INTO \(s).items VALUES (5, 'five', 5.25);
            """)
        // --plan shows the DDL against the source as it is now, and changes nothing.
        let plan = try SluiceProcess.run(["run", "--plan"], in: dir)
        #expect(plan.status == 0, "\(plan.stderr)")
        #expect(plan.stdout.contains("ALTER TABLE \"\(s)\".\"replica\" ADD COLUMN \"title\" text;"), "\(plan.stdout)")
        #expect(plan.stdout.contains("ALTER TABLE \"\(s)\".\"replica\" ALTER COLUMN \"qty\" TYPE numeric("), "\(plan.stdout)")
        #expect(plan.stdout.contains("ALTER TABLE \"items\" ADD COLUMN \"title\" TEXT;"), "\(plan.stdout)")
        #expect(plan.stdout.contains("freeze: the run would fail"), "\(plan.stdout)")
        #expect(try Self.psql("SELECT count(*) FROM pg_attribute WHERE attrelid = '\(s).replica'::regclass AND attname = 'title'") == ["0"])
        run = try SluiceProcess.run(["run", "--json"], in: dir)
        #expect(run.status == 1, "the frozen pipeline fails")
        let summary = try RunSummary.parse(run.stdout)
        #expect(summary.pipeline("pg")?.status == "succeeded", "\(summary.pipeline("pg")?.error ?? "")")
        #expect(summary.pipeline("lite")?.status == "succeeded")
        #expect(summary.pipeline("frozen")?.status == "failed")
        #expect(summary.pipeline("frozen")?.error?.contains("extra") == true, "\(summary.pipeline("frozen")?.error ?? "")")
        #expect(run.stderr.contains("column name is now title"), "the rename is reported")
        // The evolving replica: every column that ever existed; values as the source had them.
        #expect(try Self.psql("SELECT id, coalesce(name, '~'), coalesce(title, '~'), qty, coalesce(extra, '~') FROM \(s).replica ORDER BY id") == [
            "1|one|~|1.00|x1", "2|two|~|2.00|x2", "3|~|three|3.00|x3", "4|~|four|4.50|x4", "5|~|five|5.25|~",
        ])
        #expect(try Self.psql("SELECT format_type(atttypid, atttypmod) FROM pg_attribute WHERE attrelid = '\(s).replica'::regclass AND attname = 'qty'")[0].hasPrefix("numeric("), "widened to a decimal")
        #expect(try query(dir + "/replica.db", "SELECT id, coalesce(title, name), qty, coalesce(extra, '~') FROM items ORDER BY id") == [
            ["1", "one", "1", "x1"], ["2", "two", "2", "x2"], ["3", "three", "3", "x3"], ["4", "four", "4.5", "x4"], ["5", "five", "5.25", "~"],
        ])
        // Frozen: nothing after the change landed, and the next run stops at the same place.
        #expect(try query(dir + "/frozen.db", "SELECT id FROM items ORDER BY id") == [["1"]])
        run = try SluiceProcess.run(["run", "--json", "frozen"], in: dir)
        #expect(run.status == 1)
        #expect(try query(dir + "/frozen.db", "SELECT count(*) FROM items") == [["1"]])
    }
}

extension PostgresTests {
    /// `state reset PIPELINE --table T` reads T again from a new snapshot: a replica that went
    /// wrong (rows deleted and changed behind Sluice's back) is replaced, and the stream goes on.
    @Test func resettingOneTableTakesANewSnapshot() throws {
        let s = try Self.freshSchema("cdcreset")
        defer { try? dropSlots(s) }
        try Self.psql("CREATE TABLE \(s).items (id bigint PRIMARY KEY, name text); INSERT INTO \(s).items SELECT i, 'v' || i FROM generate_series(1, 50) i")
        let dir = try makeTemporaryDirectory("cdc-reset")
        try project("""
            pipelines:
              pg:
                source: { type: postgres, url: "$URL", mode: cdc, tables: [\(s).items], slot: \(s)_pg }
                sink: { type: postgres, url: "$URL", table: \(s).replica, mode: replicate }
            """, in: dir)
        #expect(try SluiceProcess.run(["run"], in: dir).status == 0)
        try Self.psql("DELETE FROM \(s).replica WHERE id <= 10; UPDATE \(s).replica SET name = 'wrong'; INSERT INTO \(s).replica VALUES (999, 'ghost')")
        try Self.psql("UPDATE \(s).items SET name = 'changed' WHERE id = 20")
        let reset = try SluiceProcess.run(["state", "reset", "pg", "--table", "items"], in: dir)
        #expect(reset.status == 0, "\(reset.stderr)")
        #expect(reset.stdout.contains("again from a new snapshot"))
        #expect(try SluiceProcess.run(["state", "reset", "pg", "--table", "nope"], in: dir).status == 2)
        #expect(try SluiceProcess.run(["run"], in: dir).status == 0)
        func same() throws -> Bool {
            try Self.psql("SELECT count(*) FROM ((SELECT * FROM \(s).items EXCEPT SELECT * FROM \(s).replica) UNION ALL (SELECT * FROM \(s).replica EXCEPT SELECT * FROM \(s).items)) d") == ["0"]
        }
        #expect(try same())
        try Self.psql("INSERT INTO \(s).items VALUES (51, 'after'); DELETE FROM \(s).items WHERE id = 1")
        #expect(try SluiceProcess.run(["run"], in: dir).status == 0)
        #expect(try same())
    }
}

extension PostgresTests {
    /// A user without REPLICATION gets the fix, before anything is read; `doctor` reports how
    /// much WAL a slot holds and how old the oldest waiting change is.
    @Test func changeCaptureProblemsAndSlotHealthAreReported() throws {
        let s = try Self.freshSchema("cdcdoc")
        defer { try? dropSlots(s) }
        try Self.psql("""
            CREATE TABLE \(s).items (id bigint PRIMARY KEY, name text);
            DO $$ BEGIN IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'sluice_norepl') THEN CREATE ROLE sluice_norepl LOGIN; END IF; END $$;
            GRANT USAGE ON SCHEMA \(s) TO sluice_norepl; GRANT SELECT ON \(s).items TO sluice_norepl;
            """)
        let dir = try makeTemporaryDirectory("cdc-doctor")
        let url = try Self.serverURL()
        let noRepl = url.replacingOccurrences(of: "://postgres@", with: "://sluice_norepl@")
        try project("""
            pipelines:
              pg:
                source: { type: postgres, url: "$URL", mode: cdc, tables: [\(s).items], slot: \(s)_pg }
                sink: { type: sqlite, path: replica.db, table: items, mode: replicate }
              weak:
                source: { type: postgres, url: "\(noRepl)", mode: cdc, tables: [\(s).items], slot: \(s)_weak }
                sink: { type: sqlite, path: weak.db, table: items, mode: replicate }
            """, in: dir)
        let run = try SluiceProcess.run(["run", "--json"], in: dir)
        let summary = try RunSummary.parse(run.stdout)
        #expect(summary.pipeline("pg")?.status == "succeeded")
        #expect(summary.pipeline("weak")?.status == "failed")
        #expect(summary.pipeline("weak")?.error?.contains("ALTER ROLE sluice_norepl REPLICATION") == true, "\(summary.pipeline("weak")?.error ?? "")")

        try Self.psql("INSERT INTO \(s).items SELECT i, repeat('x', 100) FROM generate_series(1, 500) i")
        let doctor = try SluiceProcess.run(["doctor", "--json"], in: dir)
        struct Report: Decodable {
            struct Check: Decodable { var pipeline: String; var component: String; var ok: Bool; var message: String; var fix: String? }
            var checks: [Check]
        }
        let checks = try JSONDecoder().decode(Report.self, from: Data(doctor.stdout.utf8)).checks
        let slot = checks.first { $0.pipeline == "pg" && $0.message.contains("slot \(s)_pg") }
        #expect(slot?.ok == true, "\(slot?.message ?? "")")
        #expect(slot?.message.contains("KiB of changes waiting (oldest") == true, "\(slot?.message ?? "no slot check")")
        let weak = checks.filter { $0.pipeline == "weak" && !$0.ok }
        #expect(weak.contains { $0.fix?.contains("REPLICATION") == true })
    }
}
