import Foundation
import Sluice
import Testing

/// `kill -9` the real binary at random moments, re-run to completion, and require the sink to hold
/// exactly the input: no row lost, none duplicated (spec/delivery.md, promises 1–3).
@Suite(.serialized) struct CrashTests {
    static let files = 40
    static let rowsPerFile = 3000

    /// Writes the input files and a project with a SQLite (append, no key: duplicates would show)
    /// and a JSONL files pipeline over them.
    func makeProject() throws -> String {
        let dir = try makeTemporaryDirectory("crash")
        var id = 0
        for f in 0..<Self.files {
            var csv = "order_id,customer_id,email,amount,note\n"
            for _ in 0..<Self.rowsPerFile {
                id += 1
                csv += "\(id),\(id % 97),user\(id)@example.com,\(id % 1000).\(id % 100),\"note, \"\"\(id)\"\"\"\n"
            }
            try write(csv, to: dir + "/data/orders_\(String(format: "%03d", f)).csv")
        }
        try write("""
            version: 1
            defaults:
              batch: { rows: 500 }
            pipelines:
              to_sqlite:
                source: { type: files, path: "data/*.csv", format: csv }
                schema:
                  columns:
                    order_id: { type: int64 }
                    amount: { type: "decimal(10,2)" }
                sink: { type: sqlite, path: out/warehouse.db, table: orders, mode: append }
              to_lake:
                source: { type: files, path: "data/*.csv", format: csv }
                sink: { type: files, path: out/lake, format: jsonl, target_file_size: 64KiB }
              to_parquet:
                source: { type: files, path: "data/*.csv", format: csv }
                sink: { type: files, path: out/parquet, format: parquet, target_file_size: 64KiB }
            """, to: dir + "/sluice.yaml")
        return dir
    }

    @Test func killNineAtRandomMomentsLosesAndDuplicatesNothing() throws {
        let dir = try makeProject()
        // Calibrate: how long does an uninterrupted run take here?
        let probe = try makeProject()
        let started = Date()
        let full = try SluiceProcess.run(["run"], in: probe)
        #expect(full.status == 0, "calibration run failed: \(full.stderr)")
        let duration = Date().timeIntervalSince(started)

        var rng = SeededRandom(seed: 0x5EED)
        var interrupted = 0
        for _ in 0..<12 {
            let process = try SluiceProcess.start(["run"], in: dir)
            // Early enough in each run that most runs are cut off; the rest of the work moves on anyway.
            let delay = Double.random(in: 0.02...max(0.05, duration * 0.15), using: &rng)
            // A blocking sleep: resuming from Task.sleep waits for a free thread of the concurrency
            // pool, which other tests running in parallel may hold far longer than the delay.
            usleep(UInt32(delay * 1_000_000))
            if process.isRunning {
                kill(process.processIdentifier, SIGKILL)
                interrupted += 1
            }
            process.waitUntilExit()
        }
        #expect(interrupted >= 10, "only \(interrupted) runs were killed while running (a run takes \(duration)s)")

        let final = try SluiceProcess.run(["run", "--json"], in: dir)
        #expect(final.status == 0, "stderr: \(final.stderr)")

        let total = Self.files * Self.rowsPerFile
        let counts = try query(dir + "/out/warehouse.db", "SELECT count(*), count(DISTINCT order_id), min(order_id), max(order_id) FROM orders")[0]
        #expect(counts == ["\(total)", "\(total)", "1", "\(total)"])
        let sample = try query(dir + "/out/warehouse.db", "SELECT note, amount FROM orders WHERE order_id = 4242")[0]
        #expect(sample == ["note, \"4242\"", "242.42"])

        var ids: [Int: Int] = [:]
        for file in FileSystem.glob(dir + "/out/lake/*.jsonl") {
            for line in try String(contentsOfFile: file, encoding: .utf8).split(separator: "\n") {
                let object = try JSONSerialization.jsonObject(with: Data(line.utf8)) as! [String: Any]
                ids[object["order_id"] as! Int, default: 0] += 1
            }
        }
        #expect(ids.count == total)
        #expect(ids.values.allSatisfy { $0 == 1 })
        let leftovers = try FileManager.default.contentsOfDirectory(atPath: dir + "/out/lake").filter { $0.hasSuffix(".tmp") }
        #expect(leftovers.isEmpty)

        // The partitioned Parquet lake: every id exactly once across all visible files.
        var parquetIDs: [Int64: Int] = [:]
        for file in FileSystem.glob(dir + "/out/parquet/**/*.parquet") {
            let reader = try ParquetReader(path: file, columns: ["order_id"])
            while let batch = try reader.next() {
                for id in batch.columns[0].int64s { parquetIDs[id, default: 0] += 1 }
            }
        }
        #expect(parquetIDs.count == total)
        #expect(parquetIDs.values.allSatisfy { $0 == 1 })
        let parquetLeftovers = try FileManager.default.contentsOfDirectory(atPath: dir + "/out/parquet").filter { $0.hasSuffix(".tmp") }
        #expect(parquetLeftovers.isEmpty)
    }
}

/// SIGTERM drains: the unit in progress is rolled back, exit code 3, and a re-run completes exactly.
@Suite(.serialized) struct InterruptTests {
    @Test func sigtermExitsWithThreeAndTheRerunCompletes() throws {
        let dir = try CrashTests().makeProject()
        let process = try SluiceProcess.start(["run"], in: dir)
        usleep(300_000)   // blocking on purpose, as in CrashTests
        #expect(process.isRunning)
        kill(process.processIdentifier, SIGTERM)
        process.waitUntilExit()
        #expect(process.terminationStatus == 3)
        let rerun = try SluiceProcess.run(["run"], in: dir)
        #expect(rerun.status == 0)
        let total = CrashTests.files * CrashTests.rowsPerFile
        #expect(try query(dir + "/out/warehouse.db", "SELECT count(*), count(DISTINCT order_id) FROM orders")[0] == ["\(total)", "\(total)"])
    }
}
