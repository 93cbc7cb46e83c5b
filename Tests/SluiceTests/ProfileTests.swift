import Foundation
import Sluice
import Testing

/// `sluice profile`: figures checked against values computed independently (DuckDB from PyPI,
/// installed by scripts/test into .venv-test), the HTML report rendered by headless Chromium.
@Suite struct ProfileTests {
    static let python = SluiceProcess.packageRoot.appendingPathComponent(".venv-test/bin/python").path

    func profile(_ arguments: [String], in dir: String) throws -> [String: Any] {
        let run = try SluiceProcess.run(["profile"] + arguments + ["--json"], in: dir)
        #expect(run.status == 0, "\(run.stderr)")
        return try JSONSerialization.jsonObject(with: Data(run.stdout.utf8)) as! [String: Any]
    }

    func columns(_ doc: [String: Any]) -> [String: [String: Any]] {
        Dictionary(uniqueKeysWithValues: (doc["columns"] as! [[String: Any]]).map { ($0["name"] as! String, $0) })
    }

    /// The bench generator's orders (20,000 rows): Sluice's figures against DuckDB's exact ones.
    @Test func figuresMatchDuckDB() throws {
        let dir = try makeTemporaryDirectory("profile-duckdb")
        _ = try shell("python3 \(SluiceProcess.packageRoot.path)/bench/generate_orders.py --rows 20000 --out \(dir) --formats csv >/dev/null 2>&1")
        let doc = try profile(["orders.csv"], in: dir)
        #expect(doc["rows"] as? Int == 20000)
        let mine = columns(doc)
        let script = """
            import duckdb, json
            con = duckdb.connect()
            t = con.read_csv('\(dir)/orders.csv')
            out = {}
            for c in t.columns:
                q = f'SELECT count(*) - count("{c}"), count(DISTINCT "{c}"), min("{c}")::VARCHAR, max("{c}")::VARCHAR FROM t'
                nulls, distinct, lo, hi = con.sql(q).fetchall()[0]
                mean = None
                if str(t.types[t.columns.index(c)]) in ('BIGINT', 'DOUBLE', 'INTEGER'):
                    mean, std = con.sql(f'SELECT avg("{c}"), stddev_samp("{c}") FROM t').fetchall()[0]
                    out[c] = [nulls, distinct, lo, hi, mean, std]
                else:
                    out[c] = [nulls, distinct, lo, hi, None, None]
            print(json.dumps(out))
            """
        try write(script, to: dir + "/check.py")
        let reference = try JSONSerialization.jsonObject(with: Data(try shell("\(Self.python) \(dir)/check.py").utf8)) as! [String: [Any]]
        #expect(Set(reference.keys) == Set(mine.keys))
        for (name, ref) in reference {
            let c = try #require(mine[name])
            #expect(c["null_count"] as? Int == ref[0] as? Int, "\(name) nulls")
            let exact = ref[1] as! Int, estimate = c["distinct_estimate"] as! Int
            #expect(abs(Double(estimate - exact)) <= 0.02 * Double(exact) + 1, "\(name) distinct \(estimate) vs \(exact)")
            if let mean = ref[4] as? Double {
                #expect(abs((c["mean"] as! Double) - mean) <= 1e-9 * max(1, abs(mean)), "\(name) mean")
                #expect(abs((c["stddev"] as! Double) - (ref[5] as! Double)) <= 1e-6 * max(1, abs(ref[5] as! Double)), "\(name) stddev")
                #expect(abs((c["min"] as! Double) - Double(ref[2] as! String)!) < 1e-9, "\(name) min")
                #expect(abs((c["max"] as! Double) - Double(ref[3] as! String)!) < 1e-9, "\(name) max")
            } else if name != "created_at" {
                #expect(c["min"] as? String == ref[2] as? String, "\(name) min")
                #expect(c["max"] as? String == ref[3] as? String, "\(name) max")
            }
        }
        // Low-cardinality columns: top values are exact, histograms count every value.
        let status = try #require(mine["status"])
        let counts = try shell("\(Self.python) -c \"import duckdb; print(duckdb.sql(\\\"SELECT status, count(*) c FROM '\(dir)/orders.csv' GROUP BY 1 ORDER BY 2 DESC, 1\\\").fetchall())\"")
        let top = (status["top_values"] as! [[String: Any]]).map { "('\($0["value"]!)', \($0["count"]!))" }.joined(separator: ", ")
        #expect(counts.trimmingCharacters(in: .whitespacesAndNewlines) == "[\(top)]")
        for name in ["order_id", "amount", "quantity", "created_at"] {
            let h = try #require(mine[name]?["histogram"] as? [String: Any], "\(name) has a histogram")
            #expect((h["counts"] as! [Int]).reduce(0, +) == 20000 - (mine[name]?["null_count"] as! Int), "\(name)")
            #expect((h["bounds"] as! [Any]).count == (h["counts"] as! [Int]).count + 1)
        }
    }

    @Test func nullsEdgeValuesAndLateColumns() throws {
        let dir = try makeTemporaryDirectory("profile-edges")
        var lines: [String] = []
        for i in 0..<3000 {
            var o = "{\"n\":\(i % 3 == 0 ? "null" : String(i)),\"s\":\(i % 10 == 0 ? "null" : "\"v\(i % 7)\"")"
            if i == 1 { o += ",\"big\":\(Int64.max)" }
            if i == 2 { o += ",\"big\":\(Int64.min)" }
            if i >= 2500 { o += ",\"late\":\"x\"" }
            lines.append(o + "}")
        }
        try write(lines.joined(separator: "\n") + "\n", to: dir + "/data.jsonl")
        let c = columns(try profile(["data.jsonl"], in: dir))
        #expect(c["n"]?["null_count"] as? Int == 1000)
        #expect(c["n"]?["min"] as? Int == 1 && c["n"]?["max"] as? Int == 2999)
        #expect(c["s"]?["null_count"] as? Int == 300 && c["s"]?["distinct_estimate"] as? Int == 7)
        #expect((c["s"]?["top_values"] as? [[String: Any]])?.count == 7)
        #expect(c["big"]?["null_count"] as? Int == 2998)
        #expect(c["big"]?["min"] as? Int64 == Int64.min && c["big"]?["max"] as? Int64 == Int64.max)
        // A column first seen at row 2,500 was null before it.
        #expect(c["late"]?["null_count"] as? Int == 2500)
        let s = try #require(c["s"]?["length"] as? [String: Any])
        #expect(s["min"] as? Int == 2 && s["max"] as? Int == 2)
    }

    @Test func aPipelineIsProfiledThroughItsTransformsAndBadTargetsAreClear() throws {
        let dir = try makeTemporaryDirectory("profile-pipeline")
        try write("id,price,qty\n1,2.50,4\n2,,1\n3,10.00,2\n", to: dir + "/data/items.csv")
        try write("""
            version: 1
            pipelines:
              items:
                source: { type: files, path: data/items.csv }
                transforms:
                  - compute: { total: "price * qty" }
                sink: { type: sqlite, path: out.db, table: items }
            """, to: dir + "/sluice.yaml")
        let c = columns(try profile(["items"], in: dir))
        #expect(c["total"]?["mean"] as? Double == 15.0 && c["total"]?["null_count"] as? Int == 1)
        #expect(!FileManager.default.fileExists(atPath: dir + "/out.db"), "a profile writes nothing")
        let missing = try SluiceProcess.run(["profile", "nothing-here"], in: dir)
        #expect(missing.status == 2 && missing.stderr.contains("neither a file nor a pipeline"), "\(missing.stderr)")
        let text = try SluiceProcess.run(["profile", "data/items.csv"], in: dir)
        #expect(text.status == 0 && text.stdout.contains("price") && text.stdout.contains("3 rows, 3 columns"), "\(text.stdout)")
    }

    /// The HTML report as a browser shows it: every column's card and chart, no scripts, no
    /// network; a screenshot is taken to prove the page renders.
    /// Frequent values over 300,000 rows: a column whose values are nearly all distinct (a few
    /// repeat) reports none, once no value is certainly more frequent than one in 64 (the
    /// counters); a value making up 5% of an otherwise distinct column is still reported, with
    /// its exact count, as are the values of a low-cardinality column.
    @Test func frequentValuesOfManyDistinctValuesAreDropped() throws {
        let dir = try makeTemporaryDirectory("profile-frequent")
        var text = "id,hot,low\n"
        for i in 0..<300_000 {
            text += "\(i % 250_000),\(i % 20 == 0 ? "hot" : "v\(i)"),\(["a", "b", "c"][i % 3])\n"
        }
        try write(text, to: dir + "/wide.csv")
        let cols = columns(try profile(["wide.csv"], in: dir))
        func top(_ name: String) -> [(String, Int)] {
            ((cols[name]?["top_values"] as? [[String: Any]]) ?? []).map { ($0["value"] as! String, $0["count"] as! Int) }
        }
        #expect(top("id").isEmpty, "\(top("id"))")
        #expect(top("hot").first.map { $0.0 == "hot" && $0.1 == 15_000 } == true, "\(top("hot"))")
        #expect(top("low").map(\.1) == [100_000, 100_000, 100_000])
    }

    @Test func htmlReportRendersInChromium() throws {
        let chromium = ["/usr/bin/chromium", "/usr/bin/chromium-browser"].first { FileManager.default.isExecutableFile(atPath: $0) }
        try #require(chromium != nil, "scripts/test installs chromium")
        let dir = try makeTemporaryDirectory("profile-html")
        _ = try shell("python3 \(SluiceProcess.packageRoot.path)/bench/generate_orders.py --rows 5000 --out \(dir) --formats csv >/dev/null 2>&1")
        #expect(try SluiceProcess.run(["profile", "orders.csv", "--html", "report.html"], in: dir).status == 0)
        let page = try String(contentsOfFile: dir + "/report.html", encoding: .utf8)
        #expect(!page.contains("<script") && !page.contains("http://") && !page.contains("https://"), "self-contained")
        let flags = "--headless --no-sandbox --disable-gpu --disable-dev-shm-usage --user-data-dir=\(dir)/chrome"
        let dom = try shell("\(chromium!) \(flags) --dump-dom file://\(dir)/report.html 2>/dev/null")
        for name in ["order_id", "customer_id", "email", "country", "amount", "quantity", "status", "created_at", "note"] {
            #expect(dom.contains("<h2>\(name)</h2>"), "card for \(name)")
        }
        #expect(dom.components(separatedBy: "<svg").count - 1 == 9, "a chart per column")
        _ = try shell("\(chromium!) \(flags) --window-size=1280,2400 --screenshot=\(dir)/report.png file://\(dir)/report.html >/dev/null 2>&1")
        let png = try Data(contentsOf: URL(fileURLWithPath: dir + "/report.png"))
        #expect(png.count > 20_000 && png.starts(with: [0x89, 0x50, 0x4E, 0x47]), "a rendered page, \(png.count) bytes")
    }
}
