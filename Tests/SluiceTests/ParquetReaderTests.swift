import Foundation
import Sluice
import Testing

/// Files written by pyarrow (the reference writer) read by `ParquetReader`, value for value.
@Suite struct ParquetReaderTests {
    static let python = ParquetWriterTests.python

    /// Writes the same table with pyarrow under the given options and returns its rows as pyarrow
    /// sees them, rendered the way `Value.text` renders Sluice's.
    func writeWithPyarrow(_ path: String, options: String) throws {
        let script = """
            import pyarrow as pa, pyarrow.parquet as pq, datetime, decimal
            n = 3000
            t = pa.table({
              'i64': pa.array([None if i % 11 == 0 else i * 1000003 - 7 for i in range(n)], pa.int64()),
              'i32': pa.array([i - 1500 for i in range(n)], pa.int32()),
              'f': pa.array([i / 4 for i in range(n)], pa.float64()),
              'flag': pa.array([None if i % 5 == 0 else i % 2 == 0 for i in range(n)], pa.bool_()),
              's': pa.array([None if i % 7 == 0 else ['red', 'green', 'blue', 'ünï'][i % 4] for i in range(n)], pa.string()),
              'u': pa.array([f'unique-{i}' for i in range(n)], pa.string()),
              'd': pa.array([datetime.date(1969, 12, 31) + datetime.timedelta(days=i) for i in range(n)], pa.date32()),
              'ts': pa.array([i * 1_000_001 - 5_000_000 for i in range(n)], pa.timestamp('us', tz='UTC')),
              'ms': pa.array([i * 1001 for i in range(n)], pa.timestamp('ms')),
              'dec': pa.array([decimal.Decimal(i * 37 - 99) / 100 for i in range(n)], pa.decimal128(12, 2)),
              'big': pa.array([decimal.Decimal(i) * decimal.Decimal('1234567890123.4567891') for i in range(n)], pa.decimal128(38, 7)),
            })
            pq.write_table(t, '\(path)', row_group_size=1000, \(options))
            """
        try shell("\(Self.python) -c \"\(script.replacingOccurrences(of: "\"", with: "\\\""))\"")
    }

    @Test(arguments: [
        "compression='snappy'",
        "compression='zstd', data_page_version='2.0'",
        "compression='gzip', use_dictionary=False",
        "compression='none', data_page_size=512",
    ])
    func readsWhatPyarrowWrites(_ options: String) throws {
        let dir = try makeTemporaryDirectory("parquet-read")
        let path = dir + "/t.parquet"
        try writeWithPyarrow(path, options: options)
        let reader = try ParquetReader(path: path)
        #expect(reader.schema.fields.map { "\($0.name):\($0.type)" } == [
            "i64:int64", "i32:int64", "f:double", "flag:bool", "s:string", "u:string", "d:date", "ts:timestamp", "ms:timestamp",
            "dec:decimal(12,2)", "big:decimal(38,7)"])
        var rows: [Row] = []
        var groups = 0
        while let batch = try reader.next() {
            groups += 1
            rows += batch.rows
        }
        #expect(groups == 3)
        #expect(rows.count == 3000)
        let r = rows[1234]
        #expect(r["i64"] == .int64(1234 * 1000003 - 7))
        #expect(r["i32"] == .int64(-266))
        #expect(r["f"] == .double(308.5))
        #expect(r["flag"] == .bool(true))
        #expect(r["s"] == .string("blue"))
        #expect(r["u"] == .string("unique-1234"))
        #expect(r["d"].text == "1973-05-18")
        #expect(r["ts"] == .timestamp(1234 * 1_000_001 - 5_000_000))
        #expect(r["ms"] == .timestamp(1234 * 1001 * 1000))
        #expect(r["dec"].text == "455.59")
        #expect(r["big"].text == "1523456776412345.6777494")
        #expect(rows[0]["i64"].isNull && rows[0]["s"].isNull && rows[0]["flag"].isNull)
        #expect(rows[7]["s"].isNull && rows[3]["s"] == .string("ünï"))
        #expect(rows.enumerated().allSatisfy { i, row in row["u"] == .string("unique-\(i)") })
    }

    @Test func projectionReadsOnlyTheNamedColumns() throws {
        let dir = try makeTemporaryDirectory("parquet-read")
        let path = dir + "/t.parquet"
        try writeWithPyarrow(path, options: "compression='snappy'")
        let reader = try ParquetReader(path: path, columns: ["u", "dec"])
        #expect(reader.schema.names == ["u", "dec"])   // file order
        #expect(try reader.next()?.rowCount == 1000)
    }

    @Test func roundTripsSluicesOwnFiles() throws {
        let dir = try makeTemporaryDirectory("parquet-read")
        let path = dir + "/own.parquet"
        let batch = ParquetWriterTests().sampleBatch()
        let writer = try ParquetWriter(path: path, schema: batch.schema)
        try writer.write(batch)
        try writer.finish()
        let back = try #require(try ParquetReader(path: path).next())
        #expect(back.schema.fields.map(\.type) == batch.schema.fields.map(\.type))
        for i in 0..<batch.rowCount {
            for f in batch.schema.fields {
                let a = batch.row(i)[f.name], b = back.row(i)[f.name]
                #expect(a == b || (a.text == "nan" && b.text == "nan") || (a.text == "NaN" && b.text == "NaN"), "\(f.name) row \(i): \(a) vs \(b)")
            }
        }
    }
}

extension ParquetReaderTests {
    /// A Parquet lake written by one pipeline is the source of the next: `format: parquet` in the
    /// files source, a declared column converted on the way into SQLite.
    @Test func parquetLakeFeedsSQLite() async throws {
        let dir = try makeTemporaryDirectory("parquet-source")
        var csv = "id,country,amount\n"
        for i in 1...3000 { csv += "\(i),\(["de", "fr"][i % 2]),\(i).50\n" }
        try write(csv, to: dir + "/data/orders.csv")
        var sink = FilesSinkConfig(path: "lake", format: .parquet, compression: .snappy)
        sink.partitionBy = ["country={country}"]
        let toLake = PipelineConfig(name: "to_lake", source: .files(FilesSourceConfig(path: "data/*.csv", format: .csv)), sink: .files(sink))
        let fromLake = PipelineConfig(
            name: "from_lake", source: .files(FilesSourceConfig(path: "lake/**/*.parquet", format: .parquet)),
            sink: .sqlite(SQLiteSinkConfig(path: "out.db", table: "orders", mode: .merge)),
            schema: SchemaConfig(columns: [Field("id", .int64, nullable: false, primaryKey: true), Field("amount", .string)]),
            dependsOn: ["to_lake"])
        let project = ProjectConfig(baseDirectory: dir, pipelines: [toLake, fromLake])
        let first = try await ProjectRunner(project: project).run()
        #expect(first.status == "succeeded", "\(first.pipelines.map { $0.error ?? "" })")
        let summary = try query(dir + "/out.db", "SELECT count(*), sum(id), max(amount) FROM orders")
        #expect(summary == [["3000", "4501500", "999.5"]], "\(summary)")
        #expect(try query(dir + "/out.db", "SELECT country, amount FROM orders WHERE id = 77") == [["fr", "77.5"]])   // amount was inferred as double from the CSV
        // A second run finds every Parquet file already loaded.
        let second = try await ProjectRunner(project: project).run()
        #expect(second.pipelines.allSatisfy { $0.recordsRead == 0 })
    }
}

extension ParquetReaderTests {
    /// Damaged pages (bytes flipped anywhere between the header and the footer) end in an error
    /// naming the file, row group and column, or in values; never a crash, a hang or a huge allocation.
    /// Once with snappy pages, once with uncompressed delta / byte-stream-split pages so the damage
    /// lands in those decoders directly.
    @Test(arguments: [
        "compression='snappy', data_page_size=4096",
        "compression='none', data_page_size=4096, use_dictionary=False, data_page_version='2.0', column_encoding={'i64': "
            + "'DELTA_BINARY_PACKED', 'i32': 'DELTA_BINARY_PACKED', 'u': 'DELTA_BYTE_ARRAY', 's': 'DELTA_LENGTH_BYTE_ARRAY', "
            + "'f': 'BYTE_STREAM_SPLIT'}",
    ])
    func corruptPagesNeverCrash(_ options: String) throws {
        let dir = try makeTemporaryDirectory("parquet-fuzz")
        let path = dir + "/t.parquet"
        try writeWithPyarrow(path, options: options)
        let original = Array(try Data(contentsOf: URL(fileURLWithPath: path)))
        let n = original.count
        let footer = Int(original[n - 8]) | Int(original[n - 7]) << 8 | Int(original[n - 6]) << 16
        var random = SeededRandom(seed: 0xBAD)
        var errors = 0
        for _ in 0..<300 {
            var bytes = original
            for _ in 0..<Int.random(in: 1...6, using: &random) {
                bytes[Int.random(in: 4..<(n - 8 - footer), using: &random)] = UInt8.random(in: 0...255, using: &random)
            }
            let damaged = dir + "/damaged.parquet"
            try Data(bytes).write(to: URL(fileURLWithPath: damaged))
            do {
                let reader = try ParquetReader(path: damaged)
                while try reader.next() != nil {}
            } catch let e as SluiceError {
                #expect(e.location == damaged && e.message.contains("row group"), "\(e)")
                errors += 1
            }
        }
        #expect(errors > 10)   // uncompressed pages mostly decode to other values; compressed ones mostly fail
    }
}
