import Foundation
import Sluice
import Testing

/// The real binary on the bundled quickstart project and variations of it.
@Suite struct EndToEndTests {
    let dir: String

    init() throws {
        dir = try makeTemporaryDirectory("quickstart") + "/project"
        try copyDirectory(SluiceProcess.packageRoot.appendingPathComponent("examples/quickstart").path, to: dir)
        for leftover in [".sluice", "warehouse.db", "lake"] { try? FileManager.default.removeItem(atPath: dir + "/" + leftover) }
    }

    func run(_ args: [String] = []) throws -> (SluiceProcess.Result, RunSummary) {
        let result = try SluiceProcess.run(["run", "--json"] + args, in: dir)
        let summary = try RunSummary.parse(result.stdout)
        return (result, summary)
    }

    func orders() throws -> [[String]] {
        try query(dir + "/warehouse.db", "SELECT order_id, customer_id, amount_usd, quantity, status, created_at, note, _source FROM orders ORDER BY order_id")
    }

    @Test func quickstartLoadsGoodRowsAndQuarantinesBadOnes() throws {
        let (result, summary) = try run()
        #expect(result.status == 0, "stderr: \(result.stderr)")
        #expect(summary.status == "succeeded")
        let o = try #require(summary.pipeline("orders"))
        #expect(o.records_read == 9)
        #expect(o.records_written == 6)
        #expect(o.records_rejected == 3)
        let rows = try orders()
        #expect(rows.map { $0[0] } == ["1", "2", "3", "6", "7", "8"])
        #expect(rows[1][6] == "says \"hi\", twice")
        #expect(rows[2][6] == "multi\nline note")
        #expect(rows[3][6] == "NULL")
        // +01:00 offset normalised to UTC.
        #expect(rows[4][5] == "2024-03-02T07:00:00Z")
        #expect(rows[4][7] == "data/orders_2024-03-02.csv.gz")
        // Masked with SHA-256, not the address.
        let email = try query(dir + "/warehouse.db", "SELECT email FROM orders WHERE order_id = 1")[0][0]
        #expect(email.count == 64 && !email.contains("@"))

        let quarantine = try String(contentsOfFile: quarantineFile(for: "orders"), encoding: .utf8)
        let lines = quarantine.split(separator: "\n").map { try! JSONSerialization.jsonObject(with: Data($0.utf8)) as! [String: Any] }
        #expect(lines.count == 3)
        let reasons = Set(lines.map { "\($0["reason"]!):\(($0["source"] as! [String: Any])["line"]!)" })
        #expect(reasons == ["schema:6", "parse:7", "schema:4"])
        #expect(lines.contains { ($0["message"] as! String).contains("expected 8 fields, found 7") })

        #expect(try query(dir + "/warehouse.db", "SELECT event_id FROM events ORDER BY event_id").map { $0[0] } == ["e1", "e2", "e3", "e5"])
        let nested = try query(dir + "/warehouse.db", "SELECT user, tags FROM events WHERE event_id = 'e3'")[0]
        #expect(nested == ["NULL", "[\"a\",\"b\"]"])
        let lake = try lakeRecords()
        #expect(lake.count == 5)
        #expect(FileSystem.glob(dir + "/lake/events/day=2024-03-01/*.jsonl.gz").count == 1)
    }

    @Test func secondRunLoadsNothingAndNewFileIsPickedUp() throws {
        _ = try run()
        let before = try orders()
        let (second, summary) = try run()
        #expect(second.status == 0)
        #expect(summary.pipelines.allSatisfy { $0.records_read == 0 })
        #expect(try orders() == before)

        try write("order_id,customer_id,email,amount,quantity,status,created_at,note\n10,107,h@example.com,1.00,1,new,2024-03-03T00:00:00Z,x\n",
                  to: dir + "/data/orders_2024-03-03.csv")
        let (_, third) = try run()
        #expect(third.pipeline("orders")?.records_read == 1)
        #expect(try orders().map { $0[0] } == ["1", "2", "3", "6", "7", "8", "10"])
    }

    @Test func changedFileIsReadAgainAndMergeKeepsOneRowPerKey() throws {
        _ = try run()
        // Same file, new content: order 2 changes, order 11 is new.
        try write("order_id,customer_id,email,amount,quantity,status,created_at,note\n2,101,bo@example.com,6.00,3,paid,2024-03-01T11:30:00Z,changed\n11,108,i@example.com,2.00,1,new,2024-03-01T16:00:00Z,\n",
                  to: dir + "/data/orders_2024-03-01.csv")
        let (_, summary) = try run()
        #expect(summary.pipeline("orders")?.records_read == 2)
        let rows = try orders()
        #expect(rows.map { $0[0] } == ["1", "2", "3", "6", "7", "8", "11"])
        #expect(rows[1][2] == "6" && rows[1][6] == "changed")
    }

    @Test func mergeRerunAfterStateResetLeavesIdenticalTable() throws {
        _ = try run()
        let before = try orders()
        let reset = try SluiceProcess.run(["state", "reset", "orders"], in: dir)
        #expect(reset.status == 0)
        let (again, summary) = try run(["orders"])
        #expect(again.status == 0)
        #expect(summary.pipeline("orders")?.records_written == 6)
        #expect(try orders() == before)
        // A full refresh reads everything again and lands on the same rows too.
        let (_, refreshed) = try run(["--full-refresh"])
        #expect(refreshed.pipeline("orders")?.records_written == 6)
        #expect(try orders() == before)
        #expect(try lakeRecords().count == 5)
    }

    @Test func stateShowAndRunsReportWhatHappened() throws {
        let (_, summary) = try run()
        let state = try SluiceProcess.run(["state", "show", "orders", "--json"], in: dir)
        #expect(state.stdout.contains("file:data/orders_2024-03-01.csv"))
        #expect(state.stdout.contains("sha256"))
        let runs = try SluiceProcess.run(["runs", "--json"], in: dir)
        let doc = try JSONSerialization.jsonObject(with: Data(runs.stdout.utf8)) as! [String: Any]
        let list = doc["runs"] as! [[String: Any]]
        #expect(list.count == 3)
        #expect(list.allSatisfy { $0["run_id"] as? String == summary.run_id })
    }

    @Test func jsonLogsAreOneObjectPerLine() throws {
        let result = try SluiceProcess.run(["run", "--log-format", "json", "events"], in: dir)
        #expect(result.status == 0)
        let lines = result.stderr.split(separator: "\n")
        #expect(lines.count >= 2)
        for line in lines {
            let object = try JSONSerialization.jsonObject(with: Data(line.utf8)) as? [String: Any]
            #expect(object?["level"] != nil && object?["message"] != nil && object?["pipeline"] as? String == "events")
        }
    }

    @Test func dryRunWritesNothing() throws {
        let result = try SluiceProcess.run(["run", "--dry-run"], in: dir)
        #expect(result.status == 0)
        #expect(!FileManager.default.fileExists(atPath: dir + "/warehouse.db"))
        #expect(!FileManager.default.fileExists(atPath: dir + "/lake/events"))
    }

    func quarantineFile(for pipeline: String) throws -> String {
        let files = FileSystem.glob(dir + "/.sluice/quarantine/\(pipeline)/*.jsonl")
        return try #require(files.first)
    }

    func lakeRecords() throws -> [String] {
        var lines: [String] = []
        for file in FileSystem.glob(dir + "/lake/events/**/*.jsonl.gz") {
            let r = try openByteReader(path: file)
            var buffer: [UInt8] = []
            while try r.read(into: &buffer, max: 1 << 16) > 0 {}
            lines += String(decoding: buffer, as: UTF8.self).split(separator: "\n").map(String.init)
        }
        return lines
    }
}

/// `sluice init` scaffolds a project that validates and runs as it is.
@Suite struct InitTests {
    @Test func initScaffoldsARunnableProject() throws {
        let dir = try makeTemporaryDirectory("init")
        let created = try SluiceProcess.run(["init", "shop"], in: dir)
        #expect(created.status == 0)
        let project = dir + "/shop"
        #expect(try SluiceProcess.run(["validate"], in: project).status == 0)
        let run = try SluiceProcess.run(["run", "--json"], in: project)
        #expect(run.status == 0, "stderr: \(run.stderr)")
        #expect(try RunSummary.parse(run.stdout).pipeline("orders")?.records_written == 3)
        #expect(try query(project + "/warehouse.db", "SELECT count(*) FROM orders") == [["3"]])
        // A second init refuses to overwrite.
        #expect(try SluiceProcess.run(["init", "shop"], in: dir).status == 2)
    }
}

/// `sluice validate` and configuration errors as users see them.
@Suite struct ValidateTests {
    @Test func problemsArePositionedWithSuggestions() throws {
        let dir = try makeTemporaryDirectory("validate")
        try write("""
            version: 1
            pipelines:
              orders:
                sorce: { type: files, path: x.csv }
                sink: { type: sqlite, path: w.db, table: t, mode: upsert }
              b:
                depends_on: [c]
                source: { type: files, path: "${MISSING_VAR}" }
                sink: { type: files, path: out }
              c:
                depends_on: [b]
                source: { type: files, path: y.jsonl }
                sink: { type: files, path: out }
            """, to: dir + "/sluice.yaml")
        let result = try SluiceProcess.run(["validate"], in: dir)
        #expect(result.status == 2)
        let err = result.stderr
        #expect(err.contains("sluice.yaml:4:5: pipelines.orders: unknown key 'sorce' (did you mean 'source'?)"))
        #expect(err.contains("sluice.yaml:5:55: pipelines.orders.sink.mode: unknown value 'upsert' (did you mean 'merge'?)"))
        #expect(err.contains("environment variable MISSING_VAR is not set"))
        #expect(err.contains("depends_on forms a cycle: b → c → b"))
    }

    @Test func secretsAreMaskedInOutput() throws {
        let dir = try makeTemporaryDirectory("validate")
        try write("""
            version: 1
            pipelines:
              orders:
                source: { type: files, path: "data/${API_TOKEN}/x.csv" }
                sink: { type: sqlite, path: w.db, table: t }
            """, to: dir + "/sluice.yaml")
        let result = try SluiceProcess.run(["validate"], in: dir, environment: ["API_TOKEN": "s3cr3t-value"])
        #expect(result.status == 0)
        #expect(result.stdout.contains("data/***/x.csv"))
        #expect(!result.stdout.contains("s3cr3t-value"))
    }
}
