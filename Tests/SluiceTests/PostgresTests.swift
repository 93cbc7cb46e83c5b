import Foundation
import Sluice
import Testing

/// Against a real PostgreSQL server that scripts/test starts (`scripts/peers start postgres`);
/// the URL comes from SLUICE_TEST_POSTGRES_URL. Serialized: the outage test stops that server.
@Suite(.serialized) struct PostgresTests {
    /// The server's URL; fails (does not skip) when there is none, so CI cannot pass without it.
    static func serverURL() throws -> String {
        if let url = ProcessInfo.processInfo.environment["SLUICE_TEST_POSTGRES_URL"], !url.isEmpty { return url }
        let envFile = SluiceProcess.packageRoot.appendingPathComponent(".peers/postgres.env").path
        if let text = try? String(contentsOfFile: envFile, encoding: .utf8), let eq = text.firstIndex(of: "=") {
            return String(text[text.index(after: eq)...]).trimmingCharacters(in: .whitespacesAndNewlines)
        }
        throw SluiceError(.config, "no PostgreSQL test server: run scripts/peers start postgres (scripts/test does)")
    }

    /// Runs SQL through psql; returns its unaligned output rows (fields separated by |).
    @discardableResult
    static func psql(_ sql: String) throws -> [String] {
        let file = FileManager.default.temporaryDirectory.appendingPathComponent("sluice-\(UUID().uuidString).sql").path
        try sql.write(toFile: file, atomically: true, encoding: .utf8)
        defer { try? FileManager.default.removeItem(atPath: file) }
        let out = try shell("psql '\(try serverURL())' -X -q -A -t -v ON_ERROR_STOP=1 -f \(file)")
        return out.split(separator: "\n", omittingEmptySubsequences: true).map(String.init)
    }

    /// `scripts/peers ACTION postgres`, without reading its output: the server it starts inherits
    /// the caller's descriptors, so reading them to the end would wait for the server to exit.
    static func peers(_ action: String) throws -> Int32 {
        // system(3) rather than Process: Foundation's waitUntilExit was seen not to return here
        // once the script had started a daemon.
        system("'\(SluiceProcess.packageRoot.path)/scripts/peers' \(action) postgres >/dev/null 2>&1 </dev/null")
    }

    /// A fresh schema name per test, so tests never see each other's tables.
    static func freshSchema(_ name: String) throws -> String {
        let schema = "t_\(name)_\(UInt32.random(in: 0...UInt32.max))"
        try psql("CREATE SCHEMA \(schema)")
        return schema
    }

    func project(_ body: String, in dir: String) throws {
        try write("version: 1\n" + body.replacingOccurrences(of: "$URL", with: try Self.serverURL()), to: dir + "/sluice.yaml")
    }

    @Test func everyTypeRoundTripsThroughBothConnectors() throws {
        let s = try Self.freshSchema("types")
        try Self.psql("""
            CREATE TYPE \(s).mood AS ENUM ('happy', 'sad');
            CREATE TABLE \(s).src (id int PRIMARY KEY, i2 smallint, i8 bigint, f4 real, f8 double precision, n numeric(38,10),
              n2 numeric(12,2), b boolean, t text, vc varchar(20), u uuid, d date, ts timestamp, tz timestamptz, j json, jb jsonb,
              arr int[], tags text[], by bytea, m \(s).mood, iv interval);
            INSERT INTO \(s).src VALUES
              (1, -32768, -9223372036854775808, 1.5, -2.25e300, 1234567890123456789012345678.0123456789, -0.01, true,
               'ünïcødé ✓ tab\there "quoted" back\\\\slash', 'x', 'a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11', '1969-07-20',
               '1969-07-20 20:17:40.123456', '2024-03-02 08:00:00+01', '{"a": [1, 2]}', '{"b": {"c": null}}',
               '{1,2,3}', '{"x","y z"}', '\\xdeadbeef', 'happy', '1 day 02:00:00'),
              (2, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL, NULL),
              (3, 32767, 9223372036854775807, 'NaN', 'Infinity', -0.0000000001, 9999999999.99, false, '', 'y',
               NULL, '2262-04-11', '2038-01-19 03:14:08', '1970-01-01 00:00:00+00', '[]', '"s"', '{}', '{}', '\\x', 'sad', '-3 mons');
            INSERT INTO \(s).src (id, tz) VALUES (4, 'infinity');
            """)
        let dir = try makeTemporaryDirectory("pg-types")
        try project("""
            pipelines:
              copy:
                source: { type: postgres, url: "$URL", table: \(s).src }
                on_error: { action: quarantine }
                sink: { type: postgres, url: "$URL", table: \(s).dst, mode: merge }
              to_sqlite:
                source: { type: postgres, url: "$URL", table: \(s).src }
                on_error: { action: quarantine }
                sink: { type: sqlite, path: out.db, table: dst, mode: merge }
            """, in: dir)
        let result = try SluiceProcess.run(["run", "--json"], in: dir)
        let summary = try RunSummary.parse(result.stdout)
        #expect(summary.pipeline("copy")?.records_written == 3, "\(result.stderr)")
        // infinity has no Sluice timestamp: the row is quarantined, not altered.
        #expect(summary.pipeline("copy")?.records_rejected == 1)

        let columns = try Self.psql("""
            SELECT column_name || ':' || data_type FROM information_schema.columns WHERE table_schema = '\(s)' AND table_name = 'dst' ORDER BY ordinal_position
            """)
        #expect(columns == ["id:bigint", "i2:bigint", "i8:bigint", "f4:double precision", "f8:double precision", "n:numeric", "n2:numeric",
                            "b:boolean", "t:text", "vc:text", "u:text", "d:date", "ts:timestamp with time zone", "tz:timestamp with time zone",
                            "j:jsonb", "jb:jsonb", "arr:jsonb", "tags:jsonb", "by:bytea", "m:text", "iv:text"])
        // Compared as text on the PostgreSQL side, column by column.
        let rows = try Self.psql("""
            SELECT s.id, s.i2::text = d.i2::text, s.i8::text = d.i8::text, s.f4::float8 = d.f4 OR (s.f4 = 'NaN' AND d.f4 = 'NaN'),
              s.f8 = d.f8, s.n = d.n, s.n2 = d.n2, s.b = d.b, s.t = d.t, s.vc = d.vc, s.u::text = d.u, s.d = d.d,
              s.ts AT TIME ZONE 'UTC' = d.ts, s.tz = d.tz, s.j::jsonb = d.j, s.jb = d.jb, to_jsonb(s.arr) = d.arr, to_jsonb(s.tags) = d.tags,
              s.by = d.by, s.m::text = d.m, s.iv = d.iv::interval
            FROM \(s).src s JOIN \(s).dst d USING (id) WHERE s.id <> 2 ORDER BY s.id
            """)
        // Row 3 has no uuid (NULL = NULL is NULL, the empty field).
        #expect(rows == ["1|t|t|t|t|t|t|t|t|t|t|t|t|t|t|t|t|t|t|t|t", "3|t|t|t|t|t|t|t|t|t||t|t|t|t|t|t|t|t|t|t"], "\(rows)")
        #expect(try Self.psql("SELECT count(*) FROM \(s).dst d WHERE id = 2 AND num_nulls(i2, i8, f4, f8, n, n2, b, t, vc, u, d, ts, tz, j, jb, arr, tags, by, m, iv) = 20") == ["1"])
        // The same rows through SQLite.
        let sqlite = try query(dir + "/out.db", "SELECT id, i8, t, u, d, tz, arr, hex(\"by\"), m FROM dst ORDER BY id")
        #expect(sqlite.count == 3)
        #expect(sqlite[0] == ["1", "-9223372036854775808", "ünïcødé ✓ tab\there \"quoted\" back\\\\slash", "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11",
                              "1969-07-20", "2024-03-02T07:00:00Z", "[1,2,3]", "DEADBEEF", "happy"])
    }

    @Test func incrementalReadsEveryChangeOnceWithManyEqualCursors() throws {
        let s = try Self.freshSchema("incr")
        // 500 rows share 5 cursor values; pages of 7 rows split every tie group.
        try Self.psql("""
            CREATE TABLE \(s).events (id int PRIMARY KEY, updated_at timestamptz NOT NULL, payload text);
            INSERT INTO \(s).events SELECT i, '2024-01-01'::timestamptz + (i % 5) * interval '1 hour', 'v1-' || i FROM generate_series(1, 500) i;
            """)
        let dir = try makeTemporaryDirectory("pg-incr")
        try project("""
            pipelines:
              events:
                source: { type: postgres, url: "$URL", table: \(s).events, mode: incremental, cursor_field: updated_at, batch_size: 7 }
                sink: { type: postgres, url: "$URL", table: \(s).replica, mode: merge }
            """, in: dir)
        func sameAsSource() throws -> Bool {
            try Self.psql("""
                SELECT (SELECT count(*) FROM (SELECT id, updated_at, payload FROM \(s).events EXCEPT SELECT id, updated_at, payload FROM \(s).replica) a)
                     + (SELECT count(*) FROM (SELECT id, updated_at, payload FROM \(s).replica EXCEPT SELECT id, updated_at, payload FROM \(s).events) b)
                """) == ["0"]
        }
        var run = try SluiceProcess.run(["run", "--json"], in: dir)
        #expect(try RunSummary.parse(run.stdout).pipeline("events")?.records_read == 500, "\(run.stderr)")
        #expect(try sameAsSource())

        // New rows, updates (some keep their cursor value's tie group, some move ahead), then again.
        try Self.psql("""
            INSERT INTO \(s).events SELECT i, '2024-01-01 04:00:00+00', 'v1-' || i FROM generate_series(501, 540) i;
            UPDATE \(s).events SET payload = 'v2-' || id, updated_at = '2024-01-02' WHERE id % 50 = 0;
            """)
        run = try SluiceProcess.run(["run", "--json"], in: dir)
        // The saved position is (04:00, 499): the new rows share that cursor value but their keys
        // sort after it, so all 40 are read; plus the 10 updated rows.
        #expect(try RunSummary.parse(run.stdout).pipeline("events")?.records_read == 50, "\(run.stderr)")
        #expect(try sameAsSource())
        run = try SluiceProcess.run(["run", "--json"], in: dir)
        #expect(try RunSummary.parse(run.stdout).pipeline("events")?.records_read == 0)
    }

    /// merge takes three paths (see PostgresSink+Merge): a unit with a repeated key (the last row
    /// wins), a unit of distinct keys into a table that has some of them (update, then insert the
    /// rest), and a key another session inserts while the unit is applied (redone with ON CONFLICT).
    @Test func mergeKeepsTheLastRowPerKeyOnEveryPath() throws {
        let s = try Self.freshSchema("merge")
        // A table Sluice did not create: integer and uuid keys compared with Sluice's bigint/text.
        try Self.psql("CREATE TABLE \(s).items (id integer, code uuid, n integer, label text, PRIMARY KEY (id, code))")
        let dir = try makeTemporaryDirectory("pg-merge")
        let code = "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11"
        try write("id,code,n,label\n1,\(code),1,one\n2,\(code),1,two\n3,\(code),1,three-first\n3,\(code),2,three-last\n", to: dir + "/data/a.csv")
        try project("""
            pipelines:
              items:
                source: { type: files, path: "data/*.csv" }
                schema: { columns: { id: { type: int64, primary_key: true }, code: { type: string, primary_key: true } } }
                sink: { type: postgres, url: "$URL", table: \(s).items, mode: merge }
            """, in: dir)
        func table() throws -> [String] { try Self.psql("SELECT id, n, label FROM \(s).items ORDER BY id") }
        var run = try SluiceProcess.run(["run"], in: dir)
        #expect(run.status == 0, "\(run.stderr)")
        #expect(try table() == ["1|1|one", "2|1|two", "3|2|three-last"])

        try write("id,code,n,label\n2,\(code),5,two-updated\n4,\(code),1,four\n", to: dir + "/data/b.csv")
        run = try SluiceProcess.run(["run"], in: dir)
        #expect(run.status == 0, "\(run.stderr)")
        #expect(try table() == ["1|1|one", "2|5|two-updated", "3|2|three-last", "4|1|four"])

        // Another session inserts key 6 and commits only while Sluice's insert waits on it.
        try write("id,code,n,label\n5,\(code),1,five\n6,\(code),1,six-sluice\n", to: dir + "/data/c.csv")
        let sqlFile = dir + "/concurrent.sql"
        try write("BEGIN; INSERT INTO \(s).items VALUES (6, '\(code)', 0, 'six-other'); SELECT pg_sleep(2); COMMIT;", to: sqlFile)
        let committed = dir + "/concurrent.committed"
        system("(psql '\(try Self.serverURL())' -X -q -v ON_ERROR_STOP=1 -f \(sqlFile) && touch \(committed)) >/dev/null 2>&1 </dev/null &")
        usleep(500_000)
        run = try SluiceProcess.run(["run"], in: dir)
        #expect(run.status == 0, "\(run.stderr)")
        // The other session's row went in first, so Sluice's insert really met it.
        #expect(FileManager.default.fileExists(atPath: committed))
        #expect(try table() == ["1|1|one", "2|5|two-updated", "3|2|three-last", "4|1|four", "5|1|five", "6|1|six-sluice"])
    }

    /// A table read page by page into a lake keeps every page: each checkpoint's files have names
    /// of their own (they used to share the unit's, so each page replaced the one before).
    @Test func incrementalPagesIntoALakeKeepEveryPage() throws {
        let s = try Self.freshSchema("lake")
        try Self.psql("""
            CREATE TABLE \(s).events (id int PRIMARY KEY, updated_at timestamptz NOT NULL);
            INSERT INTO \(s).events SELECT i, '2024-01-01'::timestamptz + (i % 9) * interval '1 minute' FROM generate_series(1, 100) i;
            """)
        let dir = try makeTemporaryDirectory("pg-lake")
        try project("""
            pipelines:
              events:
                source: { type: postgres, url: "$URL", table: \(s).events, mode: incremental, cursor_field: updated_at, batch_size: 7 }
                sink: { type: files, path: lake, format: jsonl }
            """, in: dir)
        func ids() throws -> [Int] {
            try Self.changeLog(dir + "/lake").map { $0["id"] as! Int }.sorted()
        }
        #expect(try SluiceProcess.run(["run"], in: dir).status == 0)
        #expect(try ids() == Array(1...100))
        try Self.psql("INSERT INTO \(s).events SELECT i, '2024-01-02' FROM generate_series(101, 120) i")
        #expect(try SluiceProcess.run(["run"], in: dir).status == 0)
        #expect(try ids() == Array(1...120))
    }

    @Test func namesAndValuesWithQuotesLoadAsData() throws {
        let s = try Self.freshSchema("inject")
        let dir = try makeTemporaryDirectory("pg-inject")
        let nasty = ["Robert'); DROP TABLE students;--", "a\"b", "semi;colon", "-- comment", "tab\there", "line\nbreak", "back\\slash", "\\N"]
        var csv = "id,\"we\"\"ird; --col\",note\n"
        for (i, v) in nasty.enumerated() { csv += "\(i),\"\(v.replacingOccurrences(of: "\"", with: "\"\""))\",plain\n" }
        try write(csv, to: dir + "/data/in.csv")
        let table = "\(s).\"evil\"\"; DROP SCHEMA \(s) CASCADE; --\""
        // Append creates the table; merge then upserts the same keys into it.
        try project("""
            pipelines:
              load_append:
                source: { type: files, path: data/in.csv, format: csv }
                schema: { columns: { id: { type: int64, primary_key: true } } }
                sink: { type: postgres, url: "$URL", table: '\(table)', mode: append }
              load_merge:
                depends_on: [load_append]
                source: { type: files, path: data/in.csv, format: csv }
                schema: { columns: { id: { type: int64, primary_key: true } } }
                sink: { type: postgres, url: "$URL", table: '\(table)', mode: merge }
            """, in: dir)
        let run = try SluiceProcess.run(["run", "--json"], in: dir)
        #expect(run.status == 0, "\(run.stderr)")
        #expect(try RunSummary.parse(run.stdout).pipeline("load_merge")?.records_written == nasty.count)
        let values = try Self.psql("SELECT encode(convert_to(string_agg(\"we\"\"ird; --col\", '|' ORDER BY id), 'UTF8'), 'base64') FROM \(s).\"evil\"\"; DROP SCHEMA \(s) CASCADE; --\"")
        let decoded = String(decoding: Data(base64Encoded: values.joined(), options: .ignoreUnknownCharacters) ?? Data(), as: UTF8.self)
        #expect(decoded == nasty.joined(separator: "|"))
        #expect(try Self.psql("SELECT count(*) FROM \(s).\"evil\"\"; DROP SCHEMA \(s) CASCADE; --\"") == ["\(nasty.count)"])
    }

    /// 30 files of 2,000 orders, as CSV, and a project loading them into `schema` twice: `append`
    /// without a key (a duplicate would show) and `merge`.
    func ordersProject(schema s: String, files: Int = 30, rows: Int = 2000) throws -> String {
        let dir = try makeTemporaryDirectory("pg-load")
        var id = 0
        for f in 0..<files {
            var csv = "order_id,customer_id,email,amount,note\n"
            for _ in 0..<rows {
                id += 1
                csv += "\(id),\(id % 97),user\(id)@example.com,\(id % 1000).\(id % 100),\"note, \"\"\(id)\"\"\"\n"
            }
            try write(csv, to: dir + "/data/orders_\(String(format: "%03d", f)).csv")
        }
        try project("""
            defaults:
              batch: { rows: 500 }
            pipelines:
              appended:
                source: { type: files, path: "data/*.csv", format: csv }
                schema: { columns: { order_id: { type: int64 }, amount: { type: "decimal(10,2)" } } }
                sink: { type: postgres, url: "$URL", table: \(s).appended, mode: append }
              merged:
                source: { type: files, path: "data/*.csv", format: csv }
                schema: { columns: { order_id: { type: int64, primary_key: true }, amount: { type: "decimal(10,2)" } } }
                sink: { type: postgres, url: "$URL", table: \(s).merged, mode: merge }
            """, in: dir)
        return dir
    }

    /// Every order exactly once in both tables, with its values.
    func expectExactlyOnce(schema s: String, total: Int) throws {
        for table in ["appended", "merged"] {
            let counts = try Self.psql("SELECT count(*), count(DISTINCT order_id), min(order_id), max(order_id), sum(amount) FROM \(s).\(table)")
            // amount is "id % 1000" "." "id % 100" (two digits unless below 10), summed in cents.
            let cents = (1...total).reduce(0) { $0 + ($1 % 1000) * 100 + ($1 % 100 < 10 ? ($1 % 100) * 10 : $1 % 100) }
            #expect(counts == ["\(total)|\(total)|1|\(total)|\(cents / 100).\(String(format: "%02d", cents % 100))"], "\(table)")
            #expect(try Self.psql("SELECT note FROM \(s).\(table) WHERE order_id = 4242") == ["note, \"4242\""])
        }
    }

    @Test func killNineDuringLoadsLosesAndDuplicatesNothing() throws {
        let s = try Self.freshSchema("crash")
        // Large enough that a load outlasts most kill moments: 200,000 rows per pipeline.
        let dir = try ordersProject(schema: s, files: 40, rows: 5000)
        let started = Date()
        let probe = try SluiceProcess.run(["run", "--dry-run"], in: dir)
        #expect(probe.status == 0, "\(probe.stderr)")
        var rng = SeededRandom(seed: 0xC0FFEE)
        var killed = 0
        for _ in 0..<10 {
            let process = try SluiceProcess.start(["run"], in: dir)
            usleep(UInt32(Double.random(in: 0.05...0.6, using: &rng) * 1_000_000))   // blocking, as in CrashTests
            if process.isRunning {
                kill(process.processIdentifier, SIGKILL)
                killed += 1
            }
            process.waitUntilExit()
        }
        #expect(killed >= 7, "only \(killed) runs were killed while running (\(Date().timeIntervalSince(started))s)")
        let final = try SluiceProcess.run(["run", "--json"], in: dir)
        #expect(final.status == 0, "\(final.stderr)")
        try expectExactlyOnce(schema: s, total: 40 * 5000)
        // Nothing left in flight: no open transactions from killed runs hold locks or rows.
        #expect(try Self.psql("SELECT count(*) FROM pg_stat_activity WHERE state LIKE 'idle in transaction%'") == ["0"])
    }

    /// The server goes away in the middle of a load and comes back: the run fails the unit in
    /// flight (or rides it out), reconnects for the others, and a second run completes; no row
    /// lost, none twice.
    @Test func serverOutageMidLoadEndsExactlyOnce() throws {
        let s = try Self.freshSchema("outage")
        let dir = try ordersProject(schema: s)
        let process = try SluiceProcess.start(["run"], in: dir)
        usleep(400_000)
        #expect(try Self.peers("pause") == 0)
        usleep(1_500_000)
        #expect(try Self.peers("resume") == 0)
        process.waitUntilExit()
        let second = try SluiceProcess.run(["run", "--json"], in: dir)
        #expect(second.status == 0, "\(second.stderr)")
        try expectExactlyOnce(schema: s, total: 30 * 2000)
    }
}
