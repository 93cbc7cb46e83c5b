import Foundation
import Sluice
import Testing

/// Quality rules, `filter` and `compute` through the real binary: what lands, what is
/// quarantined and why, what the run reports.
@Suite struct QualityTests {
    /// 1,000 orders; every 100th record from 7, 17 and 27 on is bad in one way (3% in all):
    /// no email, a negative amount, an unknown status.
    func writeOrders(_ path: String, from: Int = 1, count: Int = 1000, created: String = "2026-12-01T10:00:00Z") throws {
        var text = "order_id,email,amount,quantity,status,created_at\n"
        for i in from..<(from + count) {
            let email = i % 100 == 7 ? "" : "u\(i)@x.io"
            let amount = i % 100 == 17 ? "-5.00" : String(format: "%.2f", Double(i) * 1.5)
            let status = i % 100 == 27 ? "bogus" : (i % 2 == 0 ? "paid" : "new")
            text += "\(i),\(email),\(amount),2,\(status),\(created)\n"
        }
        try write(text, to: path)
    }

    func project(_ dir: String, quality: String, extra: String = "", path: String = "data/*.csv") throws {
        try write("""
            version: 1
            pipelines:
              orders:
                source: { type: files, path: "\(path)" }
                schema: { columns: { order_id: { type: int64, primary_key: true }, amount: { type: "decimal(12,2)" } } }
                transforms:
                  - compute: { total: "amount * quantity", domain: "split_part(email, '@', 2)" }
                quality:
            \(quality)
            \(extra)
                sink: { type: sqlite, path: out.db, table: orders }
            """, to: dir + "/sluice.yaml")
    }

    static let allRules = """
              - not_null: [email]
              - unique: [order_id]
              - range: { field: amount, min: 0, max: 100000 }
              - pattern: { field: email, regex: "^[^@\\\\s]+@[^@\\\\s]+\\\\.[a-z]{2,}$", severity: warn }
              - accepted_values: { field: status, values: [new, paid, shipped] }
              - freshness: { field: created_at, max_age: 3650d, severity: warn }
              - completeness: { field: email, min_ratio: 0.95 }
              - row_count: { min: 1, max_change: 50% }
              - expression: { name: positive_total, check: "total >= 0", severity: warn }
        """

    func quarantined(_ dir: String) throws -> [[String: Any]] {
        let files = try FileManager.default.subpathsOfDirectory(atPath: dir + "/.sluice/quarantine").filter { $0.hasSuffix(".jsonl") }
        return try files.flatMap { file in
            try String(contentsOfFile: dir + "/.sluice/quarantine/" + file, encoding: .utf8).split(separator: "\n")
                .map { try JSONSerialization.jsonObject(with: Data($0.utf8)) as! [String: Any] }
        }
    }

    @Test func threePercentBadRecordsAreQuarantinedWithTheirReasons() throws {
        let dir = try makeTemporaryDirectory("quality")
        try writeOrders(dir + "/data/orders.csv")
        try project(dir, quality: Self.allRules)
        let run = try SluiceProcess.run(["run", "--json"], in: dir)
        #expect(run.status == 0, "\(run.stderr)")
        #expect(try query(dir + "/out.db", "SELECT count(*), count(DISTINCT order_id) FROM orders") == [["970", "970"]])
        // Exactly the bad ones, each with the rule that caught it.
        let rejected = try quarantined(dir)
        #expect(rejected.count == 30)
        var reasons: [String: Set<Int>] = [:]
        for r in rejected {
            #expect(r["reason"] as? String == "quality")
            let id = (r["record"] as! [String: Any])["order_id"] as! Int
            reasons[r["rule"] as! String, default: []].insert(id)
        }
        #expect(reasons["not_null"] == Set(stride(from: 7, to: 1000, by: 100)))
        #expect(reasons["range"] == Set(stride(from: 17, to: 1000, by: 100)))
        #expect(reasons["accepted_values"] == Set(stride(from: 27, to: 1000, by: 100)))
        #expect(rejected.contains { ($0["message"] as? String) == "amount -5.00 is below 0" && ($0["field"] as? String) == "amount" })
        // The report: per rule counts, warn rules counted but kept, the score.
        let doc = try JSONSerialization.jsonObject(with: Data(run.stdout.utf8)) as! [String: Any]
        let pipeline = (doc["pipelines"] as! [[String: Any]])[0]
        let rules = Dictionary(uniqueKeysWithValues: (pipeline["quality"] as! [[String: Any]]).map { ($0["rule"] as! String, $0) })
        #expect(rules.count == 9)
        #expect(rules["not_null"]?["failed"] as? Int == 10 && rules["not_null"]?["evaluated"] as? Int == 1000)
        #expect(rules["positive_total"]?["failed"] as? Int == 10, "warn: counted; those rows were rejected by range already")
        #expect((rules["positive_total"]?["samples"] as? [Any])?.count == 10)
        #expect(rules["pattern"]?["failed"] as? Int == 0 && rules["unique"]?["failed"] as? Int == 0)
        #expect(rules["completeness"]?["evaluated"] as? Int == 1 && rules["completeness"]?["failed"] as? Int == 0)
        let score = pipeline["quality_score"] as! Double
        #expect(abs(score - Double(6000 + 3 - 40) / 6003) < 1e-9, "\(score)")
        #expect(try SluiceProcess.run(["runs"], in: dir).stdout.contains("quality 0.99"))
        // compute ran before the rules: total and domain are in the table.
        #expect(try query(dir + "/out.db", "SELECT total, domain FROM orders WHERE order_id = 2") == [["6.0", "x.io"]])
    }

    @Test func warnRulesKeepRecordsAndErrorRulesOnRunLevelLandNothing() throws {
        let dir = try makeTemporaryDirectory("quality-run")
        try writeOrders(dir + "/data/a.csv", from: 1, count: 400)
        try writeOrders(dir + "/data/b.csv", from: 401, count: 600)
        // 1% of emails are missing: a 99.5% completeness bar fails the whole run, over two files.
        try project(dir, quality: "      - completeness: { field: email, min_ratio: 0.995 }\n      - not_null: { fields: [email], severity: warn }")
        let failed = try SluiceProcess.run(["run", "--json"], in: dir)
        #expect(failed.status == 1)
        let summary = try RunSummary.parse(failed.stdout)
        #expect(summary.pipeline("orders")?.error?.contains("email is present in 99.0% of 1000 records, below 99.5%") == true, "\(failed.stdout)")
        let landed = (try? query(dir + "/out.db", "SELECT count(*) FROM orders")) ?? [["0"]]
        #expect(landed == [["0"]], "nothing landed")
        // A lower bar: both files land, every record (the warn rule keeps the 10 without email).
        try project(dir, quality: "      - completeness: { field: email, min_ratio: 0.98 }\n      - not_null: { fields: [email], severity: warn }")
        let ok = try SluiceProcess.run(["run", "--json"], in: dir)
        #expect(ok.status == 0, "\(ok.stderr)")
        #expect(try query(dir + "/out.db", "SELECT count(*), count(DISTINCT order_id), sum(email IS NULL) FROM orders") == [["1000", "1000", "10"]])
    }

    @Test func maxRatioExceededFailsTheRunWithNothingCommitted() throws {
        let dir = try makeTemporaryDirectory("quality-ratio")
        try writeOrders(dir + "/data/orders.csv")
        try project(dir, quality: "      - not_null: [email]\n      - range: { field: amount, min: 0 }", extra: "    on_error: { max_ratio: 0.01 }")
        let run = try SluiceProcess.run(["run", "--json"], in: dir)
        #expect(run.status == 1)
        #expect(try RunSummary.parse(run.stdout).pipeline("orders")?.error?.contains("more than on_error.max_ratio") == true, "\(run.stdout)")
        let landed = (try? query(dir + "/out.db", "SELECT count(*) FROM orders")) ?? [["0"]]
        #expect(landed == [["0"]])
    }

    @Test func uniqueSpansFilesAndRowCountComparesWithEarlierRuns() throws {
        let dir = try makeTemporaryDirectory("quality-unique")
        try writeOrders(dir + "/data/a.csv", from: 1, count: 100)
        try writeOrders(dir + "/data/b.csv", from: 91, count: 100)   // 91…100 again
        try project(dir, quality: "      - unique: [order_id]")
        #expect(try SluiceProcess.run(["run"], in: dir).status == 0)
        #expect(try query(dir + "/out.db", "SELECT count(*), count(DISTINCT order_id) FROM orders") == [["190", "190"]])
        #expect(Set(try quarantined(dir).map { (($0["record"] as! [String: Any])["order_id"] as! Int) }) == Set(91...100))

        // scope: sink — keys loaded by earlier runs count too.
        let sinkScope = try makeTemporaryDirectory("quality-unique-sink")
        try project(sinkScope, quality: "      - unique: { fields: [order_id], scope: sink }")
        try writeOrders(sinkScope + "/data/a.csv", from: 1, count: 100)
        #expect(try SluiceProcess.run(["run"], in: sinkScope).status == 0)
        try writeOrders(sinkScope + "/data/b.csv", from: 91, count: 30)
        let second = try SluiceProcess.run(["run", "--json"], in: sinkScope)
        #expect(try RunSummary.parse(second.stdout).pipeline("orders")?.records_rejected == 10)
        #expect(try query(sinkScope + "/out.db", "SELECT count(*), count(DISTINCT order_id) FROM orders") == [["120", "120"]])

        // Four runs of 100 records, then one of 20: a 50% change from their average fails.
        let hist = try makeTemporaryDirectory("quality-rows")
        try project(hist, quality: "      - row_count: { max_change: 50%, window: 3 }", path: "data/in.csv")
        for i in 0..<4 {
            try writeOrders(hist + "/data/in.csv", from: 1 + i * 100, count: 100)
            #expect(try SluiceProcess.run(["run"], in: hist).status == 0)
        }
        try writeOrders(hist + "/data/in.csv", from: 1000, count: 20)
        let drop = try SluiceProcess.run(["run", "--json"], in: hist)
        #expect(drop.status == 1)
        #expect(try RunSummary.parse(drop.stdout).pipeline("orders")?.error?.contains("20 records against an average of 100 over the last 3 runs") == true, "\(drop.stdout)")
        #expect(try query(hist + "/out.db", "SELECT count(*) FROM orders") == [["400"]])
    }

    @Test func staleDataFailsFreshness() throws {
        let dir = try makeTemporaryDirectory("quality-fresh")
        try writeOrders(dir + "/data/orders.csv", count: 50, created: "2020-01-01T00:00:00Z")
        try project(dir, quality: "      - freshness: { field: created_at, max_age: 48h }")
        let run = try SluiceProcess.run(["run", "--json"], in: dir)
        #expect(run.status == 1)
        #expect(try RunSummary.parse(run.stdout).pipeline("orders")?.error?.contains("the newest created_at is 2020-01-01T00:00:00Z") == true, "\(run.stdout)")
    }

    @Test func filterDropsRowsAndBadExpressionsAreValidateErrors() throws {
        let dir = try makeTemporaryDirectory("quality-filter")
        try writeOrders(dir + "/data/orders.csv", count: 100)
        try write("""
            version: 1
            pipelines:
              orders:
                source: { type: files, path: data/orders.csv }
                schema: { columns: { amount: { type: "decimal(12,2)" }, status: { type: string } } }
                transforms:
                  - filter: "amount > 0 AND status != 'new' AND order_id BETWEEN 1 AND 50"
                sink: { type: sqlite, path: out.db, table: orders }
            """, to: dir + "/sluice.yaml")
        #expect(try SluiceProcess.run(["run"], in: dir).status == 0)
        // Even ids up to 50 (odd ones are 'new') and 27 ('bogus'); 17's negative amount is odd anyway.
        #expect(try query(dir + "/out.db", "SELECT count(*), min(order_id), max(order_id), sum(order_id % 2) FROM orders") == [["26", "2", "50", "1"]])

        try write("""
            version: 1
            pipelines:
              orders:
                source: { type: files, path: data/orders.csv }
                schema: { columns: { amount: { type: "decimal(12,2)" }, email: { type: string } } }
                transforms:
                  - filter: "amount + email > 0"
                  - compute: { n: "length(amount)" }
                quality:
                  - expression: { name: bad, check: "amount * 2" }
                  - pattern: { field: email, regex: "([a-z" }
                  - not_nul: [email]
                sink: { type: sqlite, path: out.db, table: orders }
            """, to: dir + "/sluice.yaml")
        let v = try SluiceProcess.run(["validate"], in: dir)
        #expect(v.status == 2)
        let text = v.stdout + v.stderr
        #expect(text.contains("sluice.yaml:7:") && text.contains("'+' needs numbers, but column email is string"), "\(text)")
        #expect(text.contains("length() needs text as argument 1, but column amount is a decimal number"), "\(text)")
        #expect(text.contains("'amount * 2' gives double, but a true/false condition is needed here"), "\(text)")
        #expect(text.contains("is not a valid regular expression"), "\(text)")
        #expect(text.contains("unknown rule 'not_nul' (did you mean 'not_null'?)"), "\(text)")
    }

    @Test func replayAfterAFixLoadsTheQuarantinedRecordsOnce() throws {
        let dir = try makeTemporaryDirectory("quality-replay")
        try writeOrders(dir + "/data/orders.csv")
        let rules = "      - not_null: [email]\n      - accepted_values: { field: status, values: [new, paid] }"
        try project(dir, quality: rules)
        let first = try SluiceProcess.run(["run", "--json"], in: dir)
        #expect(first.status == 0, "\(first.stderr)")
        let runID = try RunSummary.parse(first.stdout).run_id
        #expect(try query(dir + "/out.db", "SELECT count(*) FROM orders") == [["980"]])
        // The status list was too strict: with 'bogus' allowed, replay loads those 10, once.
        try project(dir, quality: rules.replacingOccurrences(of: "[new, paid]", with: "[new, paid, bogus]"))
        let replay = try SluiceProcess.run(["replay", "orders", "--run", runID, "--json"], in: dir)
        #expect(replay.status == 0, "\(replay.stderr)")
        let summary = try RunSummary.parse(replay.stdout)
        #expect(summary.pipeline("orders")?.records_read == 20)
        #expect(summary.pipeline("orders")?.records_written == 10)
        #expect(summary.pipeline("orders")?.records_rejected == 10, "the ones without an e-mail fail again")
        #expect(try query(dir + "/out.db", "SELECT count(*), count(DISTINCT order_id), sum(status = 'bogus'), count(total) FROM orders") == [["990", "990", "10", "990"]])
        let again = try SluiceProcess.run(["replay", "orders", "--run", runID, "--json"], in: dir)
        #expect(try RunSummary.parse(again.stdout).pipeline("orders")?.records_written == 0, "a run is replayed once")
        #expect(try query(dir + "/out.db", "SELECT count(*) FROM orders") == [["990"]])
        let unknown = try SluiceProcess.run(["replay", "orders", "--run", "no-such-run"], in: dir)
        #expect(unknown.status == 2 && unknown.stderr.contains("quarantined nothing"), "\(unknown.stderr)")
    }
}
