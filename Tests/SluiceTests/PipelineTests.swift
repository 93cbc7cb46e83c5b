import Foundation
import Sluice
import Testing

/// Pipelines built and run in-process through the library API, each asserting on the sink.
@Suite struct PipelineTests {
    let dir: String
    init() throws { dir = try makeTemporaryDirectory("pipeline") }

    func run(_ pipelines: [PipelineConfig], options: RunOptions = RunOptions()) async throws -> RunReport {
        try await ProjectRunner(project: ProjectConfig(baseDirectory: dir, pipelines: pipelines), options: options).run()
    }

    func csvToSQLite(_ name: String = "orders", path: String = "data/*.csv", mode: WriteMode = .append,
                     schema: SchemaConfig = SchemaConfig(), transforms: [TransformConfig] = []) -> PipelineConfig {
        PipelineConfig(name: name, source: .files(FilesSourceConfig(path: path, format: .csv)),
                       sink: .sqlite(SQLiteSinkConfig(path: "out.db", table: name, mode: mode)), schema: schema, transforms: transforms)
    }

    @Test func newColumnsEvolveTheTable() async throws {
        try write("id,name\n1,a\n2,b\n", to: dir + "/data/1.csv")
        try write("id,name,score\n3,c,1.5\n", to: dir + "/data/2.csv")
        let report = try await run([csvToSQLite()])
        #expect(report.status == "succeeded")
        #expect(try query(dir + "/out.db", "SELECT id, name, score FROM orders ORDER BY id") == [["1", "a", "NULL"], ["2", "b", "NULL"], ["3", "c", "1.5"]])
    }

    @Test func freezeFailsTheUnitWithANewColumnAndKeepsTheOthers() async throws {
        try write("id,name\n1,a\n", to: dir + "/data/1.csv")
        try write("id,name,extra\n2,b,x\n", to: dir + "/data/2.csv")
        var schema = SchemaConfig()
        schema.evolution = .freeze
        let report = try await run([csvToSQLite(schema: schema)])
        let p = report.pipelines[0]
        #expect(p.status == .failed)
        #expect(p.failedUnits.map(\.unit) == ["data/2.csv"])
        #expect(p.failedUnits[0].error.contains("new column extra"))
        #expect(try query(dir + "/out.db", "SELECT id FROM orders") == [["1"]])
    }

    @Test func discardRowQuarantinesRecordsWithUnknownColumns() async throws {
        try write("id,name\n1,a\n", to: dir + "/data/1.csv")
        try write("id,name,extra\n2,b,x\n3,c,\n", to: dir + "/data/2.csv")
        var schema = SchemaConfig()
        schema.evolution = .discard_row
        let report = try await run([csvToSQLite(schema: schema)])
        #expect(report.pipelines[0].recordsRejected == 1)
        #expect(try query(dir + "/out.db", "SELECT id FROM orders ORDER BY id") == [["1"], ["3"]])
    }

    /// Text arriving in an int64 column, under each evolution policy.
    @Test(arguments: [Evolution.evolve, .freeze, .discard_row, .discard_column])
    func aStringInAnIntegerColumnFollowsTheEvolutionPolicy(_ evolution: Evolution) async throws {
        try write("id,qty\n1,10\n", to: dir + "/data/1.csv")
        try write("id,qty\n2,abc\n3,5\n", to: dir + "/data/2.csv")
        var schema = SchemaConfig()
        schema.evolution = evolution
        let report = try await run([csvToSQLite(schema: schema)])
        let p = report.pipelines[0]
        let rows = try query(dir + "/out.db", "SELECT id, qty, typeof(qty) FROM orders ORDER BY id")
        switch evolution {
        case .evolve:
            #expect(rows == [["1", "10", "integer"], ["2", "abc", "text"], ["3", "5", "integer"]])
        case .freeze:
            #expect(p.failedUnits.first?.error.contains("column qty changed to string") == true, "\(p.failedUnits)")
            #expect(rows == [["1", "10", "integer"]])
        case .discard_row:
            #expect(p.recordsRejected == 1)
            #expect(rows == [["1", "10", "integer"], ["3", "5", "integer"]])
            let quarantined = try String(contentsOfFile: p.quarantineFile ?? "", encoding: .utf8)
            #expect(quarantined.contains("\"reason\":\"schema\"") && quarantined.contains("qty 'abc' is not int64"), "\(quarantined)")
        case .discard_column:
            #expect(p.recordsRejected == 0)
            #expect(rows == [["1", "10", "integer"], ["2", "NULL", "null"], ["3", "5", "integer"]])
        }
    }

    @Test func aFileThatFailsMidwayIsRetriedWholeNextRun() async throws {
        try write("id\n1\n2\n", to: dir + "/data/good.csv")
        // A gzip file cut short: readable at first, then corrupt.
        var big = "id\n"
        for i in 100..<20_000 { big += "\(i)\n" }
        try write(big, to: dir + "/data/broken.csv")
        try shell("gzip -n \(dir)/data/broken.csv && head -c 20000 \(dir)/data/broken.csv.gz > \(dir)/data/cut && mv \(dir)/data/cut \(dir)/data/broken.csv.gz")
        let pipeline = csvToSQLite(path: "data/*.csv*", schema: SchemaConfig(columns: [Field("id", .int64)]))
        let first = try await run([pipeline])
        #expect(first.pipelines[0].status == .failed)
        #expect(first.pipelines[0].failedUnits.first?.error.contains("truncated") == true)
        #expect(try query(dir + "/out.db", "SELECT count(*) FROM orders") == [["2"]])
        // Repaired input: only the failed file is read, and read whole.
        try FileManager.default.removeItem(atPath: dir + "/data/broken.csv.gz")
        try write(big, to: dir + "/data/broken.csv")
        try shell("gzip -n \(dir)/data/broken.csv")
        let second = try await run([pipeline])
        #expect(second.pipelines[0].status == .succeeded)
        #expect(second.pipelines[0].recordsRead == 19_900)
        #expect(try query(dir + "/out.db", "SELECT count(*), count(DISTINCT id) FROM orders") == [["19902", "19902"]])
    }

    @Test func replaceSwapsTheTableAtTheEnd() async throws {
        try write("id,v\n1,a\n2,b\n", to: dir + "/data/1.csv")
        let pipeline = csvToSQLite(mode: .replace)
        _ = try await run([pipeline])
        try write("id,v\n3,c\n", to: dir + "/data/1.csv")
        _ = try await run([pipeline])
        #expect(try query(dir + "/out.db", "SELECT id, v FROM orders") == [["3", "c"]])
        #expect(try query(dir + "/out.db", "SELECT count(*) FROM sqlite_master WHERE name LIKE '_sluice_stage%'") == [["0"]])
    }

    @Test func transformsRenameCastMaskAddAndDeduplicate() async throws {
        try write("id,email,qty,ts\n1,a@x.io,3,2024-01-01T00:00:00Z\n2,b@x.io,x,2024-01-02T00:00:00Z\n1,a@x.io,4,2024-01-03T00:00:00Z\n", to: dir + "/data/1.csv")
        let transforms: [TransformConfig] = [
            .deduplicate(key: ["id"], keep: .first),
            .cast([("qty", .int64)]),
            .mask(fields: ["email"], method: .hmac, key: "k"),
            .rename([("ts", "created_at")]),
            .addFields([("_run", .runID), ("region", .literal(.string("eu"))), ("_file", .sourceFile)]),
            .select(["id", "email", "qty", "created_at", "region", "_file", "missing"]),
        ]
        let report = try await run([csvToSQLite(transforms: transforms)])
        let p = report.pipelines[0]
        #expect(p.recordsRejected == 1)   // qty "x" does not cast
        let rows = try query(dir + "/out.db", "SELECT id, email, qty, created_at, region, _file, missing FROM orders")
        // HMAC-SHA256("a@x.io", key "k"), computed independently with `openssl dgst -sha256 -hmac k`.
        let expected = try shell("printf %s a@x.io | openssl dgst -sha256 -hmac k | awk '{print $2}'").trimmingCharacters(in: .whitespacesAndNewlines)
        #expect(rows == [["1", expected, "3", "2024-01-01T00:00:00Z", "eu", "data/1.csv", "NULL"]])
    }

    @Test func dependentPipelineIsSkippedWhenUpstreamFails() async throws {
        try write("id\n1\n", to: dir + "/data/1.csv")
        var failing = csvToSQLite("upstream")
        failing.onError.action = .fail
        try write("id\nnot-a-number\n", to: dir + "/data/bad.csv")
        failing.schema = SchemaConfig(columns: [Field("id", .int64)])
        var downstream = csvToSQLite("downstream")
        downstream.dependsOn = ["upstream"]
        let report = try await run([failing, downstream])
        #expect(report.pipelines.map(\.status) == [.failed, .skipped])
        #expect(report.status == "failed")
    }

    @Test func csvAndZstdFileSinkRoundTrip() async throws {
        try write("id,note\n1,\"a, \"\"quoted\"\" note\"\n2,\n", to: dir + "/data/1.csv")
        var sink = FilesSinkConfig(path: "lake", format: .csv, compression: .zstd)
        sink.partitionBy = ["id={id}"]
        let pipeline = PipelineConfig(name: "csvlake", source: .files(FilesSourceConfig(path: "data/*.csv", format: .csv)), sink: .files(sink))
        _ = try await run([pipeline])
        let files = FileSystem.glob(dir + "/lake/**/*.csv.zst")
        #expect(files.count == 2)
        let text = try shell("zstd -dc \(dir)/lake/id=1/*.csv.zst")
        #expect(text == "id,note\n1,\"a, \"\"quoted\"\" note\"\n")
    }
}

@discardableResult
func shell(_ command: String) throws -> String {
    let p = Process()
    p.executableURL = URL(fileURLWithPath: "/bin/sh")
    p.arguments = ["-c", command]
    let out = Pipe()
    p.standardOutput = out
    try p.run()
    let data = out.fileHandleForReading.readDataToEndOfFile()
    p.waitUntilExit()
    guard p.terminationStatus == 0 else { throw SluiceError(.internal, "command failed: \(command)") }
    return String(decoding: data, as: UTF8.self)
}

extension PipelineTests {
    /// A unit that added a column and then failed takes the column with it; the next unit must
    /// not assume it exists.
    @Test func columnsAddedByAFailedUnitAreNotAssumedLater() async throws {
        try write("id,name\n1,a\n", to: dir + "/data/1.csv")
        // Adds `extra`, then breaks: the gzip stream is cut.
        var text = "id,name,extra\n"
        for i in 2..<20_000 { text += "\(i),n,x\n" }
        try write(text, to: dir + "/data/2.csv")
        try shell("gzip -n \(dir)/data/2.csv && head -c 30000 \(dir)/data/2.csv.gz > \(dir)/data/cut && mv \(dir)/data/cut \(dir)/data/2.csv.gz")
        try write("id,name,extra\n3,c,y\n", to: dir + "/data/3.csv")
        var pipeline = csvToSQLite(path: "data/*.csv*")
        pipeline.batchRows = 100   // so rows (and the new column) are written before the break
        let report = try await run([pipeline])
        #expect(report.pipelines[0].failedUnits.map(\.unit) == ["data/2.csv.gz"])
        #expect(try query(dir + "/out.db", "SELECT id, extra FROM orders ORDER BY id") == [["1", "NULL"], ["3", "y"]])
    }
}

extension PipelineTests {
    /// Each partition's CSV part has its own header, also when batches alternate between partitions
    /// and a later batch brings a new column.
    @Test func partitionedCSVPartsEachStartWithTheirHeader() async throws {
        var csv = "id,region\n"
        for i in 0..<300 { csv += "\(i),\(i % 2 == 0 ? "eu" : "us")\n" }
        try write(csv, to: dir + "/data/1.csv")
        try write("id,region,extra\n1000,eu,x\n", to: dir + "/data/2.csv")
        var sink = FilesSinkConfig(path: "lake", format: .csv)
        sink.partitionBy = ["region={region}"]
        var pipeline = PipelineConfig(name: "parts", source: .files(FilesSourceConfig(path: "data/*.csv", format: .csv)), sink: .files(sink))
        pipeline.batchRows = 7
        let report = try await run([pipeline])
        #expect(report.status == "succeeded")
        var rows = 0
        for file in FileSystem.glob(dir + "/lake/**/*.csv") {
            let lines = try String(contentsOfFile: file, encoding: .utf8).split(separator: "\n")
            #expect(lines[0] == "id,region" || lines[0] == "id,region,extra", "\(file)")
            #expect(lines.dropFirst().allSatisfy { !$0.hasPrefix("id,") }, "\(file)")
            rows += lines.count - 1
        }
        #expect(rows == 301)
    }
}
