import Foundation
@testable import SluiceFormats
import Sluice
import Testing

/// Files from `ParquetWriter` read back by pyarrow, the reference reader (installed by scripts/test
/// into `.venv-test`).
@Suite struct ParquetWriterTests {
    static let python = SluiceProcess.packageRoot.appendingPathComponent(".venv-test/bin/python").path

    func sampleBatch() -> RecordBatch {
        let schema = Schema([
            Field("id", .int64, nullable: false),
            Field("name", .string),
            Field("amount", .decimal(precision: 12, scale: 2)),
            Field("big", .decimal(precision: 38, scale: 10)),
            Field("score", .double),
            Field("ok", .bool),
            Field("day", .date),
            Field("at", .timestamp),
            Field("doc", .json),
        ])
        let rows: [[String: Value]] = [
            ["id": .int64(Int64.min), "name": .string("ünïcødé ✓"), "amount": .decimal(-1999, scale: 2),
             "big": .decimal(Int128("12345678901234567890123456789") ?? 0, scale: 10), "score": .double(.nan), "ok": .bool(true),
             "day": .date(-1), "at": .timestamp(-1_000_000), "doc": .json("{\"a\":[1,2]}")],
            ["id": .int64(0), "name": .null, "amount": .null, "big": .null, "score": .double(-.infinity), "ok": .null,
             "day": .null, "at": .null, "doc": .null],
            ["id": .int64(Int64.max), "name": .string(""), "amount": .decimal(123456, scale: 2), "big": .decimal(-1, scale: 10),
             "score": .double(2.5), "ok": .bool(false), "day": .date(19_784), "at": .timestamp(1_709_362_800_123_456),
             "doc": .json("null")],
        ]
        var columns = schema.fields.map { Column(type: $0.type) }
        for row in rows { for (i, f) in schema.fields.enumerated() { columns[i].append(row[f.name] ?? .null) } }
        return RecordBatch(schema: schema, columns: columns)
    }

    @Test(arguments: ParquetCompression.allCases)
    func pyarrowReadsEveryTypeBack(_ compression: ParquetCompression) throws {
        let dir = try makeTemporaryDirectory("parquet")
        let path = dir + "/sample.parquet"
        var options = ParquetWriterOptions()
        options.compression = compression
        options.pageBytes = 64   // several pages per column
        let writer = try ParquetWriter(path: path, schema: sampleBatch().schema, options: options)
        try writer.write(sampleBatch())
        try writer.write(sampleBatch())
        try writer.finish()
        let script = """
            import pyarrow.parquet as pq, json, math
            t = pq.read_table('\(path)')
            rows = t.to_pylist()
            def enc(v):
                if isinstance(v, float) and math.isnan(v): return 'nan'
                return str(v)
            print(json.dumps({'schema': [f'{f.name}:{f.type}' for f in t.schema], 'rows': [[enc(r[c]) for c in t.column_names] for r in rows],
                              'codec': pq.ParquetFile('\(path)').metadata.row_group(0).column(1).compression,
                              'stats': str(pq.ParquetFile('\(path)').metadata.row_group(0).column(0).statistics.min)}))
            """
        let out = try shell("\(Self.python) -c \"\(script.replacingOccurrences(of: "\"", with: "\\\""))\"")
        let doc = try JSONSerialization.jsonObject(with: Data(out.utf8)) as! [String: Any]
        #expect(doc["schema"] as! [String] == ["id:int64", "name:string", "amount:decimal128(12, 2)", "big:decimal128(38, 10)",
                                                 "score:double", "ok:bool", "day:date32[day]", "at:timestamp[us, tz=UTC]", "doc:extension<arrow.json>"]
                || (doc["schema"] as! [String]).last == "doc:string")
        let rows = doc["rows"] as! [[String]]
        #expect(rows.count == 6)
        #expect(rows[0] == ["-9223372036854775808", "ünïcødé ✓", "-19.99", "1234567890123456789.0123456789", "nan", "True",
                            "1969-12-31", "1969-12-31 23:59:59+00:00", "{\"a\":[1,2]}"])
        #expect(rows[1] == ["0", "None", "None", "None", "-inf", "None", "None", "None", "None"])
        #expect(rows[2] == ["9223372036854775807", "", "1234.56", "-1E-10", "2.5", "False", "2024-03-02",
                            "2024-03-02 07:00:00.123456+00:00", "null"])
        #expect(doc["codec"] as? String == ["none": "UNCOMPRESSED", "snappy": "SNAPPY", "gzip": "GZIP", "zstd": "ZSTD"][compression.rawValue])
        #expect(doc["stats"] as? String == "-9223372036854775808")
    }
}

extension ParquetWriterTests {
    /// CSV → a Hive-partitioned Parquet lake through the files sink; pyarrow reads the whole lake.
    @Test func csvToPartitionedParquetLake() async throws {
        let dir = try makeTemporaryDirectory("lake")
        var csv = "order_id,country,amount,created_at\n"
        for i in 1...5000 { csv += "\(i),\(["de", "fr", "us"][i % 3]),\(i % 100).\(i % 10)5,2024-03-0\(1 + i % 3)T10:00:00Z\n" }
        try write(csv, to: dir + "/data/orders.csv")
        var sink = FilesSinkConfig(path: "lake", format: .parquet, compression: .zstd)
        sink.partitionBy = ["day={created_at:%Y-%m-%d}"]
        var pipeline = PipelineConfig(name: "lake", source: .files(FilesSourceConfig(path: "data/*.csv", format: .csv)), sink: .files(sink),
                                      schema: SchemaConfig(columns: [Field("amount", .decimal(precision: 10, scale: 2))]))
        pipeline.batchRows = 1000
        let report = try await ProjectRunner(project: ProjectConfig(baseDirectory: dir, pipelines: [pipeline])).run()
        #expect(report.status == "succeeded")
        #expect(FileSystem.glob(dir + "/lake/**/*.parquet").count == 3)
        let script = """
            import pyarrow.dataset as ds
            t = ds.dataset('\(dir)/lake', format='parquet', partitioning='hive').to_table()
            ids = sorted(t.column('order_id').to_pylist())
            row = [r for r in t.to_pylist() if r['order_id'] == 4242][0]
            print(len(ids), len(set(ids)), ids[0], ids[-1], row['country'], row['amount'], row['day'], t.schema.field('created_at').type)
            """
        let out = try shell("\(Self.python) -c \"\(script.replacingOccurrences(of: "\"", with: "\\\""))\"")
        #expect(out.trimmingCharacters(in: .whitespacesAndNewlines) == "5000 5000 1 5000 de 42.25 2024-03-01 timestamp[us, tz=UTC]")
    }
}

extension ParquetWriterTests {
    /// Low-cardinality strings are dictionary-encoded; a column whose dictionary outgrows the limit
    /// falls back to PLAIN mid-chunk, and every value still reads back.
    @Test func dictionaryEncodingAndFallback() throws {
        let dir = try makeTemporaryDirectory("parquet")
        let path = dir + "/dict.parquet"
        let schema = Schema([Field("status", .string), Field("note", .string)])
        var status = Column(type: .string), note = Column(type: .string)
        for i in 0..<5000 {
            status.append(i % 7 == 0 ? .null : .string(["new", "paid", "shipped"][i % 3]))
            note.append(.string("note number \(i)"))
        }
        var options = ParquetWriterOptions()
        options.dictionaryBytes = 2000
        options.pageBytes = 4096
        let writer = try ParquetWriter(path: path, schema: schema, options: options)
        try writer.write(RecordBatch(schema: schema, columns: [status, note]))
        try writer.finish()
        let script = """
            import pyarrow.parquet as pq
            f = pq.ParquetFile('\(path)')
            t = f.read()
            s, n = t.column('status').to_pylist(), t.column('note').to_pylist()
            ok = all(s[i] == (None if i % 7 == 0 else ['new', 'paid', 'shipped'][i % 3]) and n[i] == f'note number {i}' for i in range(5000))
            c0, c1 = f.metadata.row_group(0).column(0), f.metadata.row_group(0).column(1)
            print(ok, sorted(c0.encodings), sorted(c1.encodings), c0.has_dictionary_page, c0.statistics.null_count, c0.statistics.min, c0.statistics.max)
            """
        let out = try shell("\(Self.python) -c \"\(script.replacingOccurrences(of: "\"", with: "\\\""))\"")
        #expect(out.trimmingCharacters(in: .whitespacesAndNewlines)
                == "True ['PLAIN', 'RLE', 'RLE_DICTIONARY'] ['PLAIN', 'RLE', 'RLE_DICTIONARY'] True 715 new shipped")
    }

    /// Past `dictionaryBytes`, a dictionary is kept while its values repeat, up to
    /// `maxDictionaryBytes`: 2,000 distinct 50-byte texts, each 20 times, stay dictionary-encoded
    /// (the data pages are a few bits a value) unless the hard limit is below the dictionary's size.
    @Test(arguments: [(1 << 20, true), (32 << 10, false)])
    func dictionaryOfRepeatedValuesGrowsPastTheSoftLimit(maxDictionary: Int, keptWhole: Bool) throws {
        let dir = try makeTemporaryDirectory("parquet")
        let path = dir + "/repeated.parquet"
        let schema = Schema([Field("note", .string)])
        // New values come in slowly (one in ten rows at most), as in a column of repeated texts.
        let texts = (0..<40_000).map { i in "note \((i * 7919) % min(2000, 10 + i / 10)) " + String(repeating: "abcdefghij", count: 5) }
        try texts.joined(separator: "\n").write(toFile: dir + "/expected.txt", atomically: true, encoding: .utf8)
        var note = Column(type: .string)
        for t in texts { note.append(.string(t)) }
        var options = ParquetWriterOptions()
        options.compression = .none
        options.dictionaryBytes = 16 << 10
        options.maxDictionaryBytes = maxDictionary
        let writer = try ParquetWriter(path: path, schema: schema, options: options)
        try writer.write(RecordBatch(schema: schema, columns: [note]))
        try writer.finish()
        let script = """
            import pyarrow.parquet as pq
            f = pq.ParquetFile('\(path)')
            n = f.read().column('note').to_pylist()
            c = f.metadata.row_group(0).column(0)
            same = n == open('\(dir)/expected.txt').read().split('\\n')
            print(len(set(n)), same, c.total_uncompressed_size, c.statistics.min == min(n), c.statistics.max == max(n))
            """
        let out = try shell("\(Self.python) -c \"\(script.replacingOccurrences(of: "\"", with: "\\\""))\"")
        let fields = out.split(separator: " ").map { String($0).trimmingCharacters(in: .whitespacesAndNewlines) }
        #expect(fields.count == 5, "\(out)")
        guard fields.count == 5, let size = Int(fields[2]) else { return }
        #expect(fields[0] == "2000" && fields[1] == "True" && fields[3] == "True" && fields[4] == "True", "\(out)")
        // PLAIN would take 40,000 × (4 + ~50) bytes; a whole dictionary (2,000 × ~54) plus 11-bit indices far less.
        if keptWhole { #expect(size < 300_000, "\(out)") } else { #expect(size > 1_000_000, "\(out)") }
    }

    /// Numbers are dictionary-encoded too: a low-cardinality column (a quantity, a price list, a
    /// few days, a few amounts) stays a dictionary and a few bits a value, unique ids fall back to
    /// PLAIN mid-chunk, and pyarrow reads every value back exactly (NaN, -0.0, the extremes).
    @Test func numbersAreDictionaryEncodedWhileTheyRepeat() throws {
        let dir = try makeTemporaryDirectory("parquet")
        let path = dir + "/numbers.parquet"
        let schema = Schema([Field("id", .int64), Field("qty", .int64), Field("price", .double), Field("day", .date),
                             Field("amount", .decimal(precision: 12, scale: 2)), Field("small", .decimal(precision: 5, scale: 1))])
        let prices: [Double] = [.nan, -0.0, 0.0, .infinity, -.infinity, 9.99, .greatestFiniteMagnitude]
        let quantities: [Int64] = [Int64.min, -1, 0, 1, 2, 3, Int64.max]
        var columns = schema.fields.map { Column(type: $0.type) }
        for i in 0..<50_000 {
            columns[0].append(.int64(Int64(i) * 1_000_003))
            columns[1].append(i % 1000 == 0 ? .null : .int64(quantities[i % 7]))
            columns[2].append(.double(prices[i % 7]))
            columns[3].append(.date(Int32(i % 5) - 2))
            columns[4].append(.decimal(Int128(i % 13) * 1_000_000_000 - 99, scale: 2))
            columns[5].append(.decimal(Int128(i % 3) - 99_999, scale: 1))
        }
        var options = ParquetWriterOptions()
        options.compression = .none
        options.dictionaryBytes = 4096
        options.pageBytes = 8192
        let writer = try ParquetWriter(path: path, schema: schema, options: options)
        try writer.write(RecordBatch(schema: schema, columns: columns))
        try writer.finish()
        let script = """
            import pyarrow.parquet as pq, math, decimal, datetime, struct
            f = pq.ParquetFile('\(path)')
            t = f.read().to_pydict()
            prices = [float('nan'), -0.0, 0.0, float('inf'), float('-inf'), 9.99, 1.7976931348623157e308]
            qs = [-2**63, -1, 0, 1, 2, 3, 2**63 - 1]
            bits = lambda x: struct.pack('<d', x)
            ok = all(t['id'][i] == i * 1000003 and t['qty'][i] == (None if i % 1000 == 0 else qs[i % 7])
                     and bits(t['price'][i]) == bits(prices[i % 7])
                     and t['day'][i] == datetime.date(1970, 1, 1) + datetime.timedelta(days=i % 5 - 2)
                     and t['amount'][i] == decimal.Decimal((i % 13) * 1000000000 - 99).scaleb(-2)
                     and t['small'][i] == decimal.Decimal(i % 3 - 99999).scaleb(-1) for i in range(50000))
            g = f.metadata.row_group(0)
            sizes = {g.column(c).path_in_schema: g.column(c).total_uncompressed_size for c in range(g.num_columns)}
            q = g.column(1).statistics
            print(ok, sizes['id'], max(sizes[c] for c in ['qty', 'price', 'day', 'amount', 'small']), q.min, q.max, q.null_count)
            """
        let out = try shell("\(Self.python) -c \"\(script.replacingOccurrences(of: "\"", with: "\\\""))\"")
        let fields = out.split(separator: " ").map { String($0).trimmingCharacters(in: .whitespacesAndNewlines) }
        #expect(fields.count == 6, "\(out)")
        guard fields.count == 6, let idSize = Int(fields[1]), let repeatedSize = Int(fields[2]) else { return }
        #expect(fields[0] == "True", "\(out)")
        // Unique ids: PLAIN after the first 4 KiB of dictionary, so about 8 bytes each.
        #expect(idSize > 350_000, "\(out)")
        // Repeated numbers: at most 4-bit indices (and the nulls' levels), where PLAIN takes 4-8 bytes a value.
        #expect(repeatedSize < 40_000, "\(out)")
        #expect(Array(fields[3...5]) == ["-9223372036854775808", "9223372036854775807", "50"], "\(out)")
    }
}
